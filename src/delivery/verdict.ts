// Pure: what one attempt's outcome decides, for the delivery (delivered,
// retry when, dead, released) and for its target (failing, answering again).
// No clock and no randomness of its own (both passed in), no I/O: the worker
// applies the decision (records it, logs it, counts it).
import type { AttemptOutcome } from '../db/vocabulary.ts'
import { retryDelayMs, type BackoffOptions } from './backoff.ts'
import type { DeliveryOutcome } from './deliver.ts'

export type Verdict = AttemptOutcome

// After this many failed attempts in a row the target is taken to be down:
// the worker stops sending it every due delivery (each would fail, and each
// failure costs a request and a write, all of it paid by the ingest too) and
// probes it with one delivery at a time, on the retry schedule, until one
// succeeds. The rest stay pending, due, and go out at full speed after that.
export const FAILING_AFTER = 5
// A down target is probed at least this often, so its return is noticed
// within a minute (unless it asked for longer with Retry-After).
export const PROBE_MAX_MS = 60_000

export interface RetryPolicy extends BackoffOptions {
  // A delivery still failing this long after its give-up clock started is dead.
  giveUpAfterMs: number
}

export interface AttemptFacts {
  outcome: Pick<DeliveryOutcome, 'ok' | 'aborted' | 'retryAfterMs' | 'unsendable'>
  // This delivery's attempt number (1 for the first try).
  attempt: number
  // When its give-up clock started (arrival, or the last replay).
  retrySince: number
  // The target's failed attempts in a row before this one.
  failures: number
  now: number
  retry: RetryPolicy
  random?: () => number
}

export interface Decision {
  verdict: Verdict
  // When the delivery falls due again: set for 'retry' only.
  nextAttemptAt: number | null
  // The target's failed attempts in a row, this one included.
  failures: number
  // What changed for the target: it just crossed into failing, or it answers
  // again after failing; null when neither.
  target: 'failing' | 'recovered' | null
  // While the target is failing, when its next probe may go; null leaves it as it was.
  probeAt: number | null
}

export function isFailing (failures: number): boolean {
  return failures >= FAILING_AFTER
}

export function decide (f: AttemptFacts): Decision {
  const { outcome, now, retry } = f
  const random = f.random ?? Math.random
  if (outcome.ok) {
    return { verdict: 'delivered', nextAttemptAt: null, failures: 0, target: isFailing(f.failures) ? 'recovered' : null, probeAt: null }
  }
  // Shutdown cut it short: not the target's fault, nothing counted against it.
  if (outcome.aborted) return { verdict: 'released', nextAttemptAt: null, failures: f.failures, target: null, probeAt: null }
  // Nothing was sent, so nothing is known of the target; and what cannot be
  // built now never will be (the body is the same on every retry).
  if (outcome.unsendable === true) return { verdict: 'dead', nextAttemptAt: null, failures: f.failures, target: null, probeAt: null }
  const failures = f.failures + 1
  let probeAt: number | null = null
  if (isFailing(failures)) {
    // Probes back off from the first one, whatever the delivery's own attempt number.
    const probes = failures - FAILING_AFTER + 1
    const delay = outcome.retryAfterMs !== null
      ? retryDelayMs(probes, outcome.retryAfterMs, retry, random)
      : Math.min(PROBE_MAX_MS, retryDelayMs(probes, null, retry, random))
    probeAt = now + delay
  }
  const target = failures === FAILING_AFTER ? 'failing' : null
  if (now - f.retrySince >= retry.giveUpAfterMs) return { verdict: 'dead', nextAttemptAt: null, failures, target, probeAt }
  return { verdict: 'retry', nextAttemptAt: now + retryDelayMs(f.attempt, outcome.retryAfterMs, retry, random), failures, target, probeAt }
}
