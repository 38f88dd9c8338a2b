// One HTTP POST of stored bytes to one target, and a verdict on it. Never
// throws: every failure becomes an outcome the worker can record.
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici'
import type { TargetConfig } from '../config.ts'
import { USER_AGENT } from '../version.ts'
import { parseRetryAfter } from './backoff.ts'
import { webhookHeaders } from './sign.ts'

const EXCERPT_BYTES = 1024
const DRAIN_LIMIT_BYTES = 64 * 1024

export interface DeliveryOutcome {
  ok: boolean
  statusCode: number | null
  error: string | null
  retryAfterMs: number | null
  responseExcerpt: string | null
  durationMs: number
  // Aborted because storehook is shutting down: not the target's fault.
  aborted: boolean
  // No request was made: the body could not be built (a decoded target's
  // document of a stored body that does not decode). No retry can change it.
  unsendable?: boolean
}

export interface DeliveryRequest {
  notificationId: string
  attempt: number
  body: Buffer
}

export interface TargetClient {
  target: TargetConfig
  agent: Agent
  origin: string
  path: string
  // Credentials in the URL (https://user:pass@host) become a header: undici
  // does not send userinfo, and the URL itself is never logged.
  authorization: string | null
  // Requests on the wire, so shutdown can cut them short (abortInflight).
  inflight: Set<{ abort: (reason: Error) => void }>
  shuttingDown: boolean
}

export function createClient (target: TargetConfig): TargetClient {
  const url = new URL(target.url)
  const authorization = url.username !== ''
    ? 'Basic ' + Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')
    : null
  const agent = new Agent({
    connections: target.concurrency,
    headersTimeout: target.timeoutMs,
    bodyTimeout: target.timeoutMs,
    connectTimeout: Math.min(target.timeoutMs, 10_000),
    keepAliveTimeout: 4_000
  })
  return { target, agent, origin: url.origin, path: url.pathname + url.search, authorization, inflight: new Set(), shuttingDown: false }
}

// Shutdown's deadline passed: every request still on the wire is aborted,
// and its outcome says so (aborted: true).
export function abortInflight (client: TargetClient): void {
  client.shuttingDown = true
  for (const request of client.inflight) request.abort(new Error('aborted: storehook is shutting down'))
}

export function buildHeaders (client: TargetClient, req: DeliveryRequest, nowMs: number): Record<string, string> {
  const target = client.target
  const headers: Record<string, string> = {
    ...(client.authorization !== null ? { authorization: client.authorization } : {}),
    ...target.headers,
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'x-storehook-notification-id': req.notificationId,
    'x-storehook-attempt': String(req.attempt)
  }
  if (target.signingSecret !== null) {
    // webhook-id is the notification id, stable across retries, so the
    // target can deduplicate on it as the spec intends.
    Object.assign(headers, webhookHeaders(target.signingSecret, req.notificationId, Math.floor(nowMs / 1000), req.body))
  }
  return headers
}

function describeError (err: unknown, timeoutMs: number, timedOut: boolean, shutdown: boolean): string {
  if (shutdown) return 'aborted: storehook is shutting down'
  if (timedOut || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return `timeout after ${timeoutMs} ms`
  }
  const e = err as { code?: string; message?: string }
  // undici's messages name host and port at most, never the path or query
  // where tokens live; keep it that way by preferring the code.
  return e.code !== undefined ? `${e.code}${e.message !== undefined ? ': ' + e.message.slice(0, 200) : ''}` : String(e.message ?? err).slice(0, 200)
}

// Built on undici's dispatch handler rather than request(): request() wraps
// every answer in a Readable stream, an async iterator and an AbortSignal,
// which cost as much CPU as the HTTP exchange itself, and we only ever keep
// the status, one header and the first KB of the answer.
export function deliver (client: TargetClient, req: DeliveryRequest): Promise<DeliveryOutcome> {
  return new Promise((resolve) => {
    const started = performance.now()
    let controller: Dispatcher.DispatchController | null = null
    // Why the exchange was cut short, if it was (timeout, shutdown, a flood of answer bytes).
    let cut: Error | null = null
    let timedOut = false
    let statusCode = 0
    let retryAfter: string | string[] | undefined
    const excerpt: Buffer[] = []
    let seen = 0
    const abort = (reason: Error): void => {
      cut ??= reason
      if (controller !== null && !controller.aborted) controller.abort(reason)
    }
    // The whole exchange, answer body included, gets timeoutMs: undici's own
    // timeouts are per phase, and a target dripping its answer never trips them.
    const timer = setTimeout(() => { timedOut = true; abort(new Error('timeout')) }, client.target.timeoutMs)
    const entry = { abort }
    client.inflight.add(entry)
    const finish = (outcome: Omit<DeliveryOutcome, 'durationMs'>): void => {
      clearTimeout(timer)
      client.inflight.delete(entry)
      resolve({ ...outcome, durationMs: Math.round(performance.now() - started) })
    }
    const answered = (): void => {
      const ok = statusCode >= 200 && statusCode < 300
      const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter
      finish({
        ok,
        statusCode,
        error: ok ? null : `HTTP ${statusCode}`,
        retryAfterMs: ok ? null : parseRetryAfter(header, Date.now()),
        responseExcerpt: excerpt.length > 0 ? Buffer.concat(excerpt).toString('utf8') : null,
        aborted: false
      })
    }
    client.agent.dispatch({
      origin: client.origin,
      path: client.path,
      method: 'POST',
      headers: buildHeaders(client, req, Date.now()),
      body: req.body
    }, {
      onRequestStart (c) {
        controller = c
        if (cut !== null) c.abort(cut)
      },
      onResponseStart (_c, code, headers) {
        statusCode = code
        retryAfter = headers['retry-after']
      },
      onResponseData (_c, chunk) {
        if (seen < EXCERPT_BYTES) excerpt.push(chunk.subarray(0, EXCERPT_BYTES - seen))
        seen += chunk.length
        // Past the limit we stop reading and drop the connection: a target
        // that streams megabytes must not tie up a delivery slot.
        if (seen > DRAIN_LIMIT_BYTES) abort(new Error('answer too long'))
      },
      onResponseEnd () {
        answered()
      },
      onResponseError (_c, err) {
        // Once the status is in, it is what counts: a broken, endless or
        // slow answer body does not change it.
        if (statusCode !== 0) {
          answered()
          return
        }
        const shutdown = client.shuttingDown && !timedOut
        finish({
          ok: false,
          statusCode: null,
          error: describeError(cut ?? err, client.target.timeoutMs, timedOut, shutdown),
          retryAfterMs: null,
          responseExcerpt: null,
          aborted: shutdown
        })
      }
    })
  })
}
