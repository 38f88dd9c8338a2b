// The table of writer ops (src/outbox/writer-ops.ts) is the one place an op's
// durability, batching and queue are decided; the outbox's calls are typed
// from it.
import { join } from 'node:path'
import t from 'tap'
import { OPS, type OpName } from '../../src/outbox/writer-ops.ts'
import { openOutbox, type Outbox } from '../../src/outbox/outbox.ts'
import { tempDir } from '../helpers/app.ts'

t.test('only delivery bookkeeping is relaxed, and only attempt outcomes wait for company', async (t) => {
  const relaxed = Object.entries(OPS).filter(([, e]) => e.queue === 'ordered' && e.durability === 'relaxed').map(([k]) => k).sort()
  t.same(relaxed, ['claim', 'claimAlerts', 'compactBodies', 'complete', 'expire', 'markDead', 'release', 'releaseAttempt', 'scheduleRetry', 'settleAlert'],
    'a power cut may undo these (the delivery or alert is sent again; a rewritten body stays as it was); every other write is durable before it answers')
  const later = Object.entries(OPS).filter(([, e]) => e.batching === 'later').map(([k]) => k).sort()
  t.same(later, ['complete', 'markDead', 'releaseAttempt', 'scheduleRetry'])
  const unordered = Object.entries(OPS).filter(([, e]) => e.queue === 'unordered').map(([k]) => k).sort()
  t.same(unordered, ['findQuarantined', 'nextDueAt', 'setMaxPageCount', 'stats'], 'these answer ahead of queued writes')
})

t.test('a mistyped op or argument does not compile; an unordered read is not a call', async (t) => {
  const { outbox } = openOutbox({ path: join(tempDir(t), 'ops.db'), busyTimeoutMs: 100 })
  t.teardown(() => outbox.close())
  // Type checks only (npm run typecheck covers test/): none of these runs.
  const never = (o: Outbox): void => {
    // @ts-expect-error: no such op
    void o.call('enqeue')
    // @ts-expect-error: expire takes (target, arrivedBefore)
    void o.call('expire', 'a')
    // @ts-expect-error: prune's cutoff is a number
    void o.call('prune', 'yesterday', 500)
    // @ts-expect-error: nextDueAt skips the ordered queue, so it is a read, not a call
    void o.call('nextDueAt', 'a')
    // @ts-expect-error: and a write is not a read
    void o.read('probe')
  }
  void never
  const name: OpName = 'probe'
  await outbox.call(name)
  t.equal(await outbox.read('nextDueAt', 'nobody'), null, 'a read answers with the committed state')
})
