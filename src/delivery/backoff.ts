// Pure: when to try a failed delivery again. No clock, no randomness of its
// own (both are passed in), so the schedule is testable to the millisecond.

export interface BackoffOptions {
  minDelayMs: number
  maxDelayMs: number
}

// Exponential with "equal jitter": half the step is fixed, half random, so
// delays keep growing while retries of many rows spread out instead of
// hitting a recovering target all at once.
export function backoffDelayMs (attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const step = Math.min(opts.maxDelayMs, opts.minDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52))
  const jittered = step / 2 + random() * (step / 2)
  return Math.round(Math.min(opts.maxDelayMs, Math.max(opts.minDelayMs, jittered)))
}

// Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3).
export function parseRetryAfter (value: string | string[] | undefined, now: number): number | null {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return null
  const s = v.trim()
  if (/^\d{1,10}$/.test(s)) return Number(s) * 1000
  // An HTTP date always names a day and month; Date.parse alone would also take "-5".
  if (s.length > 64 || !/[A-Za-z]/.test(s)) return null
  const at = Date.parse(s)
  if (Number.isNaN(at)) return null
  return Math.max(0, at - now)
}

// A target's Retry-After wins over our own schedule, within our bounds: at
// least the minimum delay (no hammering on "0") and at most the maximum.
export function retryDelayMs (attempt: number, retryAfterMs: number | null, opts: BackoffOptions, random: () => number = Math.random): number {
  if (retryAfterMs !== null) return Math.min(opts.maxDelayMs, Math.max(opts.minDelayMs, retryAfterMs))
  return backoffDelayMs(attempt, opts, random)
}
