import t from 'tap'
import { backoffDelayMs, parseRetryAfter, retryDelayMs } from '../../src/delivery/backoff.ts'

const opts = { minDelayMs: 1000, maxDelayMs: 60_000 }

t.test('delays grow exponentially between the bounds, with jitter in the upper half', async (t) => {
  t.same([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, opts, () => 1)), [1000, 2000, 4000, 8000, 16000])
  t.same([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, opts, () => 0)), [1000, 1000, 2000, 4000, 8000])
  t.equal(backoffDelayMs(30, opts, () => 1), 60_000, 'capped at the maximum')
  t.equal(backoffDelayMs(10_000, opts, () => 0.5), 45_000, 'huge attempt numbers do not overflow')
  for (let n = 1; n < 40; n++) {
    const d = backoffDelayMs(n, opts)
    t.ok(d >= opts.minDelayMs && d <= opts.maxDelayMs, `attempt ${n}: ${d} within bounds`)
  }
})

t.test('Retry-After: seconds or an HTTP date', async (t) => {
  const now = Date.parse('2026-11-28T12:00:00Z')
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter(' 0 ', now), 0)
  t.equal(parseRetryAfter('Sat, 28 Nov 2026 12:00:30 GMT', now), 30_000)
  t.equal(parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter(['5', '9'], now), 5000)
  t.equal(parseRetryAfter(undefined, now), null)
  t.equal(parseRetryAfter('soon', now), null)
  t.equal(parseRetryAfter('-5', now), null)
  t.equal(parseRetryAfter('x'.repeat(100), now), null)
})

t.test('Retry-After wins over the schedule, within the bounds', async (t) => {
  t.equal(retryDelayMs(1, 30_000, opts, () => 0), 30_000)
  t.equal(retryDelayMs(1, 0, opts, () => 0), 1000, 'never below the minimum')
  t.equal(retryDelayMs(1, 86_400_000, opts, () => 0), 60_000, 'never above the maximum')
  t.equal(retryDelayMs(3, null, opts, () => 1), 4000)
})
