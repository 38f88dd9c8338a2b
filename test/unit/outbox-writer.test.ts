// The writer thread can die (its database unopenable, an addon fault): the
// outbox must fail the calls it had, say so, and start a new writer with the
// next call, without a process restart.
import { mkdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { migrate, openDatabase } from '../../src/db/client.ts'
import { Outbox, StorageError, type AttemptRecord, type ClaimedDelivery, type NewNotification } from '../../src/outbox/outbox.ts'
import { listDeliveries } from '../../src/outbox/store.ts'
import { tempDir } from '../helpers/app.ts'

// A minimal notification row: what these tests store needs no real payload.
function testRow (id: string): NewNotification {
  return {
    id, dedupeKey: id, receivedAt: Date.now(), source: 'webhook', version: 2, notificationUuid: id,
    notificationType: 'TEST', verification: 'unchecked', body: Buffer.from('{"signedPayload":"a.b.c"}')
  }
}

t.test('a writer that dies is replaced by the next call', async (t) => {
  const path = join(tempDir(t), 'w.db')
  // A directory where the file should be: the writer cannot open it and dies.
  mkdirSync(path)
  const crashes: unknown[] = []
  const outbox = new Outbox({ path, busyTimeoutMs: 100, onCrash: (err) => crashes.push(err) })
  t.teardown(() => outbox.close())

  await t.rejects(outbox.probe(), 'the call in flight when the writer died fails')
  t.ok(crashes.length >= 1, 'the crash is reported')
  await t.rejects(outbox.probe(), 'still no database: the replacement dies too')

  // The cause goes away: a real, migrated database appears at the path.
  rmdirSync(path)
  const database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())

  await outbox.probe()
  const stored = await outbox.enqueue(testRow('n1'), ['a'], [])
  t.same(stored.targets, ['a'], 'the new writer stores')
  t.equal(listDeliveries(database.db, 'n1').length, 1, 'and its commit is visible to another connection')
})

// A migrated database, an outbox writing to it, and a connection to read it back.
function migratedOutbox (t: Test, file: string): { database: ReturnType<typeof openDatabase>; outbox: Outbox } {
  const path = join(tempDir(t), file)
  const database = openDatabase(path)
  migrate(database)
  const outbox = new Outbox({ path, busyTimeoutMs: 100 })
  t.teardown(() => database.close())
  t.teardown(() => outbox.close())
  return { database, outbox }
}

t.test('a closed outbox refuses new calls with a StorageError', async (t) => {
  const { outbox } = migratedOutbox(t, 'c.db')
  await outbox.probe()
  await outbox.close()
  await outbox.close()
  const err = await outbox.probe().catch((e: unknown) => e)
  t.ok(err instanceof StorageError)
  t.match((err as Error).message, /closed/)
})

// Outcomes wait a moment on the main thread for other messages to travel
// with (outbox.ts OUTCOME_DELAY_MS): one sent alone must still arrive, and
// one queued just before close() must be committed, not dropped with the timer.
t.test('delayed outcomes: one alone commits, and close() takes the last one along', async (t) => {
  const { database, outbox } = migratedOutbox(t, 'o.db')
  for (const id of ['o1', 'o2']) await outbox.enqueue(testRow(id), ['a'], [])
  const [first, second] = await outbox.claim('a', 2, 60_000)
  const record = (c: ClaimedDelivery | undefined): AttemptRecord => ({
    deliveryId: c!.deliveryId, fence: c!.fence, attempt: c!.attempt, startedAt: Date.now(), durationMs: 1, statusCode: 200, error: null, responseExcerpt: null
  })

  t.equal(await outbox.complete(record(first)), true, 'an outcome sent on its own is recorded')
  t.equal(listDeliveries(database.db, first!.notificationId)[0]!.status, 'delivered')

  const pending = outbox.complete(record(second))
  await outbox.close()
  t.equal(await pending, true, 'the outcome queued before close() was committed by it')
  t.equal(listDeliveries(database.db, second!.notificationId)[0]!.status, 'delivered')
})

// The dispatcher (delivery/dispatcher.ts) may have a fresh delivery written
// already leased to a worker: the row says so, a claim leaves it alone, and
// only the targets left with a row to claim are announced.
t.test('enqueue writes the leases it is given and announces only the rows left to claim', async (t) => {
  const { database, outbox } = migratedOutbox(t, 'h.db')
  const woken: Array<{ targets: readonly string[]; seenFrom: number }> = []
  outbox.onEnqueued((targets, seenFrom) => woken.push({ targets, seenFrom }))

  const leaseEnd = Date.now() + 60_000
  const stored = await outbox.enqueue(testRow('h1'), ['a', 'b'], [['a', leaseEnd]])
  t.same(stored.targets, ['a', 'b'])
  const [leased] = stored.leased
  t.match(leased, { notificationId: 'h1', target: 'a', attempt: 1, fence: 1 })
  t.equal(stored.leased.length, 1, 'only the target given a lease')
  const a = listDeliveries(database.db, 'h1').find((d) => d.target === 'a')!
  t.match(a, { id: leased!.deliveryId, attempts: 1, fence: 1, leaseUntil: leaseEnd })
  t.same(woken.map((w) => w.targets), [['b']], 'only the target left with a row to claim is announced')
  const claimed = await outbox.claim('b', 10, 60_000)
  t.ok(woken[0]!.seenFrom <= outbox.sequence(), 'a claim asked for now comes late enough to see it')
  t.equal(claimed.length, 1, 'and does')
  t.same(await outbox.claim('a', 10, 60_000), [], 'the leased row is not claimable while leased')

  const again = await outbox.enqueue({ ...testRow('h2'), dedupeKey: 'h1' }, ['a'], [['a', leaseEnd]])
  t.same(again.leased, [], 'a repeat writes no row and leases nothing')
  t.equal(woken.length, 1, 'and announces nothing')
})
