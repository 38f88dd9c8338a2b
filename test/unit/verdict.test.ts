// The verdict on one attempt, decided without a clock, a random source or a
// database: every branch checked to the millisecond.
import t from 'tap'
import { decide, FAILING_AFTER, PROBE_MAX_MS, type AttemptFacts } from '../../src/delivery/verdict.ts'

const retry = { minDelayMs: 1000, maxDelayMs: 120_000, giveUpAfterMs: 3_600_000 }
const now = 10_000_000
const failed = { ok: false, aborted: false, retryAfterMs: null }
// With random() = 1 the backoff is the full step: 1 s, 2 s, 4 s, ... (backoff.ts).
const facts = (f: Partial<AttemptFacts>): AttemptFacts => ({ outcome: failed, attempt: 1, retrySince: now - 1000, failures: 0, now, retry, random: () => 1, ...f })

t.test('a success delivers and clears the failures; after a failing spell the target is back', async (t) => {
  const ok = { ok: true, aborted: false, retryAfterMs: null }
  t.same(decide(facts({ outcome: ok, failures: 3 })), { verdict: 'delivered', nextAttemptAt: null, failures: 0, target: null, probeAt: null })
  t.same(decide(facts({ outcome: ok, failures: FAILING_AFTER + 2 })), { verdict: 'delivered', nextAttemptAt: null, failures: 0, target: 'recovered', probeAt: null })
  t.equal(decide(facts({ outcome: ok, retrySince: now - retry.giveUpAfterMs - 1 })).verdict, 'delivered', 'late but answered: delivered, not dead')
})

t.test('a failure is retried on the backoff of its own attempt, honouring Retry-After within bounds', async (t) => {
  t.same(decide(facts({ attempt: 3 })), { verdict: 'retry', nextAttemptAt: now + 4000, failures: 1, target: null, probeAt: null })
  t.equal(decide(facts({ outcome: { ...failed, retryAfterMs: 30_000 } })).nextAttemptAt, now + 30_000)
  t.equal(decide(facts({ outcome: { ...failed, retryAfterMs: 0 } })).nextAttemptAt, now + retry.minDelayMs, 'no hammering on "0"')
  t.equal(decide(facts({ outcome: { ...failed, retryAfterMs: 86_400_000 } })).nextAttemptAt, now + retry.maxDelayMs)
})

t.test('a failure at or past the give-up time is dead, with no next attempt', async (t) => {
  t.same(decide(facts({ retrySince: now - retry.giveUpAfterMs })), { verdict: 'dead', nextAttemptAt: null, failures: 1, target: null, probeAt: null })
  t.equal(decide(facts({ retrySince: now - retry.giveUpAfterMs + 1 })).verdict, 'retry', 'one millisecond before, still retried')
})

t.test('an attempt cut short by shutdown is released and counts nothing against the target', async (t) => {
  const aborted = { ok: false, aborted: true, retryAfterMs: null }
  t.same(decide(facts({ outcome: aborted, failures: FAILING_AFTER + 1, retrySince: 0 })), { verdict: 'released', nextAttemptAt: null, failures: FAILING_AFTER + 1, target: null, probeAt: null })
})

t.test('a body that cannot be built is dead at once, and says nothing of the target', async (t) => {
  const unsendable = { ok: false, aborted: false, retryAfterMs: null, unsendable: true }
  for (const failures of [0, FAILING_AFTER - 1, FAILING_AFTER + 1]) {
    t.same(decide(facts({ outcome: unsendable, failures, attempt: 1, retrySince: Date.now() })), { verdict: 'dead', nextAttemptAt: null, failures, target: null, probeAt: null })
  }
})

t.test('the failure that makes FAILING_AFTER in a row marks the target failing; probes back off from the first', async (t) => {
  const fifth = decide(facts({ failures: FAILING_AFTER - 1 }))
  t.same(fifth, { verdict: 'retry', nextAttemptAt: now + 1000, failures: FAILING_AFTER, target: 'failing', probeAt: now + 1000 })
  t.same(decide(facts({ failures: FAILING_AFTER - 2 })).probeAt, null, 'one short: not failing, no probe time')
  const later = decide(facts({ failures: FAILING_AFTER + 2 }))
  t.same([later.target, later.failures, later.probeAt], [null, FAILING_AFTER + 3, now + 8000], 'the fourth probe waits 8 s')
  t.equal(decide(facts({ failures: FAILING_AFTER + 20 })).probeAt, now + PROBE_MAX_MS, 'probed at least once a minute')
  t.equal(decide(facts({ failures: FAILING_AFTER + 20, outcome: { ...failed, retryAfterMs: 90_000 } })).probeAt, now + 90_000, 'unless the target asked for longer')
  t.equal(decide(facts({ failures: FAILING_AFTER, retrySince: now - retry.giveUpAfterMs })).verdict, 'dead', 'a probe past the give-up time is dead like any other')
})
