// The dispatcher decides who gets a fresh delivery: a worker with room gets
// it leased, with the body in memory; every reservation must end in take()
// or cancel(), or the worker's count of promised slots would drift; rows
// left to claim (after a dispatch or a replay) wake their worker.
import t from 'tap'
import { Dispatcher, type DispatchStore, type Slots } from '../../src/delivery/dispatcher.ts'
import type { ClaimedDelivery, EnqueueResult, NewNotification } from '../../src/outbox/outbox.ts'

function row (id: string): NewNotification {
  return {
    id, dedupeKey: id, receivedAt: Date.now(), source: 'webhook', version: 2, notificationUuid: id,
    notificationType: 'TEST', verification: 'unchecked', body: Buffer.from('{"signedPayload":"a.b.c"}')
  }
}

// A worker that records what the dispatcher asks of it.
function fakeWorker (events: string[], name: string, room: () => boolean): Slots & { taken: Array<{ c: ClaimedDelivery; leaseEnd: number }> } {
  const taken: Array<{ c: ClaimedDelivery; leaseEnd: number }> = []
  return {
    taken,
    leaseMs: 60_000,
    reserve: () => { const r = room(); events.push(`${name}:reserve:${r}`); return r },
    take: (c, leaseEnd) => { events.push(`${name}:take`); taken.push({ c, leaseEnd }) },
    cancel: () => { events.push(`${name}:cancel`) },
    wake: (seenFrom) => { events.push(`${name}:wake:${seenFrom}`) }
  }
}

// A store that leases what it is asked to (as store.enqueue does), or fails,
// or answers as for a duplicate; it announces the unleased targets as the outbox does.
function fakeStore (mode: () => 'store' | 'duplicate' | 'fail') {
  const listeners = new Set<(targets: readonly string[], seenFrom: number) => void>()
  const calls: Array<{ targets: readonly string[]; leases: ReadonlyArray<readonly [string, number]> }> = []
  const store: DispatchStore & { calls: typeof calls; announce: (targets: string[], seenFrom: number) => void } = {
    calls,
    announce: (targets, seenFrom) => { for (const fn of listeners) fn(targets, seenFrom) },
    onEnqueued: (fn) => { listeners.add(fn); return () => { listeners.delete(fn) } },
    enqueue: async (n, targets, leases) => {
      calls.push({ targets, leases })
      const m = mode()
      if (m === 'fail') throw new Error('disk full')
      if (m === 'duplicate') return { id: 'first', duplicate: true, targets: [], leased: [] }
      const result: EnqueueResult = {
        id: n.id,
        duplicate: false,
        targets: [...targets],
        leased: leases.map(([target], i) => ({ deliveryId: i + 1, notificationId: n.id, target, attempt: 1, fence: 1, retrySince: n.receivedAt }))
      }
      store.announce(targets.filter((t) => !leases.some(([l]) => l === t)), 7)
      return result
    }
  }
  return store
}

t.test('a worker with room gets its delivery leased, with the body in memory; the others are woken', async (t) => {
  const events: string[] = []
  let mode: 'store' | 'duplicate' | 'fail' = 'store'
  const store = fakeStore(() => mode)
  let roomA = true
  const a = fakeWorker(events, 'a', () => roomA)
  const b = fakeWorker(events, 'b', () => false)
  const dispatcher = new Dispatcher(store, new Map([['a', a], ['b', b]]))
  dispatcher.listen()

  const n = row('n1')
  const before = Date.now()
  const stored = await dispatcher.dispatch(n, ['a', 'b', 'c'])
  t.same(events, ['a:reserve:true', 'b:reserve:false', 'b:wake:7', 'a:take'], 'c has no worker here: nothing asked of anyone')
  t.same(store.calls[0]!.targets, ['a', 'b', 'c'])
  t.same(store.calls[0]!.leases.map(([target]) => target), ['a'], 'only the reserved target is leased')
  const [{ c, leaseEnd }] = a.taken as [{ c: ClaimedDelivery; leaseEnd: number }]
  t.equal(c.body, n.body, 'the body is the one in memory, not read back')
  t.match(c, { notificationId: 'n1', target: 'a', attempt: 1, fence: 1 })
  t.ok(leaseEnd >= before + a.leaseMs, 'the lease runs as long as the worker asked')
  t.equal(leaseEnd, store.calls[0]!.leases[0]![1], 'and is the one stored')
  t.same(stored.targets, ['a', 'b', 'c'])

  events.length = 0
  mode = 'duplicate'
  await dispatcher.dispatch(row('n2'), ['a'])
  t.same(events, ['a:reserve:true', 'a:cancel'], 'a repeat writes no row: the reservation is cancelled')

  events.length = 0
  mode = 'fail'
  await t.rejects(dispatcher.dispatch(row('n3'), ['a']), /disk full/)
  t.same(events, ['a:reserve:true', 'a:cancel'], 'a failed write cancels the reservation')

  events.length = 0
  mode = 'store'
  roomA = false
  await dispatcher.dispatch(row('n4'), ['a'])
  t.same(events, ['a:reserve:false', 'a:wake:7'], 'no room: nothing to settle, and the worker is woken to claim it')

  events.length = 0
  store.announce(['a', 'b'], 9)
  t.same(events, ['a:wake:9', 'b:wake:9'], 'a replay (announced by the outbox) wakes the workers it left rows for')

  dispatcher.close()
  events.length = 0
  store.announce(['a'], 10)
  t.same(events, [], 'closed: it no longer listens')
})

t.test('without workers (the CLI) it only stores', async (t) => {
  const store = fakeStore(() => 'store')
  const dispatcher = new Dispatcher(store)
  const stored = await dispatcher.dispatch(row('n1'), ['a'])
  t.same(store.calls, [{ targets: ['a'], leases: [] }])
  t.same(stored.leased, [])
})
