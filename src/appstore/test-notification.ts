// Request a Test Notification, end to end: ask Apple to send a TEST
// notification, follow Apple's send attempts (Get Test Notification Status),
// then look in storehook's own database for it and for its delivery to every
// target, and say plainly where it stopped. Used by the CLI and the admin API.
import { decodeNotificationBody } from '../apple/payload.ts'
import type { DeliveryState, UnorderedReads } from '../outbox/engine.ts'
import { AppleApiError, type AppStoreClient, type SendAttempt } from './client.ts'

export type TestOutcome = 'reached-every-target' | 'target-failed' | 'not-received' | 'elsewhere'

export type TargetResult = DeliveryState

export interface TestReport {
  outcome: TestOutcome
  ok: boolean
  environment: string
  bundleId: string
  testNotificationToken: string
  notificationUuid: string | null
  notificationId: string | null
  sendAttempts: SendAttempt[]
  targets: TargetResult[]
  message: string
}

// What each of Apple's sendAttemptResult values means for the operator.
const ADVICE: Record<string, string> = {
  SUCCESS: 'Apple got a 2xx answer.',
  TIMED_OUT: 'Apple waited too long for an answer: is storehook up and reachable from the internet, and quick to answer?',
  TLS_ISSUE: 'The TLS handshake failed: the URL must be HTTPS with a certificate from a public CA (full chain) and TLS 1.2 or newer.',
  CIRCULAR_REDIRECT: 'The URL redirects in a loop: give App Store Connect the final URL, with no redirect.',
  NO_RESPONSE: 'Nothing answered: is the Server Notification URL set in App Store Connect (App Information > App Store Server Notifications), is the host right, and is storehook running and reachable?',
  SOCKET_ISSUE: 'The connection broke: check the host, the port, and any firewall or proxy in front of storehook.',
  UNSUPPORTED_CHARSET: 'The answer had a charset Apple does not accept: check any proxy in front of storehook.',
  INVALID_RESPONSE: 'The answer was not valid HTTP: check any proxy in front of storehook.',
  PREMATURE_CLOSE: 'The connection closed before the answer: check any proxy or load balancer in front of storehook.',
  UNSUCCESSFUL_HTTP_RESPONSE_CODE: 'The URL answered with an error status: is the path /apple/notifications, and does storehook accept this bundle ID and environment (APPLE_BUNDLE_IDS, VERIFY_SIGNATURES)? Check storehook\'s log and `storehook quarantine`.',
  OTHER: 'Apple reports another problem: check that the URL in App Store Connect is right and storehook is reachable over HTTPS.'
}

export function adviceFor (result: string): string {
  // Apple's value indexes the table: only its own keys count, never what an object inherits (toString...).
  return Object.hasOwn(ADVICE, result) ? ADVICE[result]! : ADVICE.OTHER!
}

interface Found { id: string; deliveries: TargetResult[] }

function uuidOf (signedPayload: string | undefined): string | null {
  if (signedPayload === undefined) return null
  try {
    return decodeNotificationBody(Buffer.from(JSON.stringify({ signedPayload }))).indexed.notificationUuid
  } catch {
    return null
  }
}

export interface CheckOptions {
  client: AppStoreClient
  storage: Pick<UnorderedReads, 'findTestNotification'>
  pollIntervalMs?: number
  timeoutMs?: number
  signal?: AbortSignal
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms)
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
})

export async function checkTestNotification (o: CheckOptions): Promise<TestReport> {
  const { client, storage } = o
  const pollMs = o.pollIntervalMs ?? 2000
  const deadline = Date.now() + (o.timeoutMs ?? 60_000)
  // A second early: the TEST may arrive before Apple's answer does.
  const requestedAt = Date.now() - 1000
  const token = await client.requestTestNotification()
  let attempts: SendAttempt[] = []
  let uuid: string | null = null
  let found: Found | null = null
  for (;;) {
    try {
      const status = await client.testNotificationStatus(token)
      attempts = Array.isArray(status.sendAttempts) ? status.sendAttempts : []
      uuid = uuidOf(status.signedPayload) ?? uuid
    } catch (err) {
      // 404 while Apple has not sent it yet; anything else is a real answer.
      if (!(err instanceof AppleApiError && err.status === 404)) throw err
    }
    found = await storage.findTestNotification(uuid, client.environment, requestedAt)
    const last = attempts.at(-1)?.sendAttemptResult
    if (found !== null && found.deliveries.every((d) => d.status !== 'pending')) break
    if (found === null && last !== undefined) break
    if (Date.now() + pollMs > deadline || o.signal?.aborted === true) break
    await sleep(pollMs, o.signal)
  }
  return report({ client, token, uuid, attempts, found, waitedS: Math.round((o.timeoutMs ?? 60_000) / 1000) })
}

function report (r: { client: AppStoreClient; token: string; uuid: string | null; attempts: SendAttempt[]; found: Found | null; waitedS: number }): TestReport {
  const base = { environment: r.client.environment, bundleId: r.client.bundleId, testNotificationToken: r.token, notificationUuid: r.uuid, sendAttempts: r.attempts }
  const what = `The ${r.client.environment} TEST notification for ${r.client.bundleId}`
  const last = r.attempts.at(-1)?.sendAttemptResult
  if (r.found === null) {
    if (last === 'SUCCESS') {
      return {
        ...base,
        outcome: 'elsewhere',
        ok: false,
        notificationId: null,
        targets: [],
        message: `${what} was delivered by Apple (SUCCESS), but not to this storehook: the Server Notification URL in App Store Connect points to another server. Set it to this storehook's https://<host>/apple/notifications.`
      }
    }
    return {
      ...base,
      outcome: 'not-received',
      ok: false,
      notificationId: null,
      targets: [],
      message: last === undefined
        ? `${what} never reached storehook, and Apple reported no send attempt within ${r.waitedS} s. Is the Server Notification URL set in App Store Connect for ${r.client.environment}? Try again in a minute.`
        : `${what} never reached storehook. Apple's attempt: ${last}. ${adviceFor(last)}`
    }
  }
  const failed = r.found.deliveries.filter((d) => d.status !== 'delivered')
  const lines = failed.map((d) => `target ${d.name} ${d.status === 'dead' ? 'failed' : 'has not received it yet'}${d.lastStatusCode !== null ? ` with HTTP ${d.lastStatusCode}` : ''}${d.lastError !== null ? `: ${d.lastError}` : ''} (${d.attempts} attempt(s))`)
  if (failed.length === 0) {
    return {
      ...base,
      outcome: 'reached-every-target',
      ok: true,
      notificationId: r.found.id,
      targets: r.found.deliveries,
      message: r.found.deliveries.length === 0
        ? `${what} reached storehook (notification ${r.found.id}); no target is configured for it.`
        : `${what} reached storehook (notification ${r.found.id}) and every target: ${r.found.deliveries.map((d) => d.name).join(', ')}.`
    }
  }
  return {
    ...base,
    outcome: 'target-failed',
    ok: false,
    notificationId: r.found.id,
    targets: r.found.deliveries,
    message: `${what} reached storehook (notification ${r.found.id}), but ${lines.join('; ')}. storehook keeps retrying pending deliveries; see \`storehook status\`.`
  }
}
