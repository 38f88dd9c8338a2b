// Pure: what one attempt at an alert decides. Sent; or tried again on the
// delivery backoff (src/delivery/backoff.ts), within bounds fit for alerts;
// or given up once the alert is too old to be worth telling.
import { retryDelayMs, type BackoffOptions } from '../delivery/backoff.ts'
import type { AlertOutcome } from '../outbox/engine.ts'
import type { SendOutcome } from './send.ts'

// An alert a day late tells nobody anything: the dashboard has it by then.
export const ALERT_GIVE_UP_AFTER_MS = 86_400_000
// However long a destination stays down, it hears at most 15 min after it is back.
export const ALERT_MAX_DELAY_MS = 900_000

export function alertVerdict (
  sent: SendOutcome,
  message: { attempts: number; createdAt: number },
  now: number,
  retry: BackoffOptions,
  random: () => number = Math.random
): AlertOutcome {
  if (sent.ok) return { status: 'sent' }
  const error = sent.error ?? 'refused'
  if (now - message.createdAt >= ALERT_GIVE_UP_AFTER_MS) return { status: 'failed', error: `gave up after ${message.attempts} attempts: ${error}` }
  const bounds = { minDelayMs: retry.minDelayMs, maxDelayMs: Math.max(retry.minDelayMs, Math.min(retry.maxDelayMs, ALERT_MAX_DELAY_MS)) }
  return { status: 'pending', nextAttemptAt: now + retryDelayMs(message.attempts, sent.retryAfterMs, bounds, random), error }
}
