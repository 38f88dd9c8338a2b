// One HTTP POST of stored bytes to one target, and a verdict on it. Never
// throws: every failure becomes an outcome the worker can record.
import { Agent, errors as undiciErrors } from 'undici'
import type { TargetConfig } from '../config.ts'
import { USER_AGENT } from '../version.ts'
import { parseRetryAfter } from './backoff.ts'
import { webhookHeaders } from './sign.ts'

const EXCERPT_BYTES = 1024
// Past this we stop reading the answer and drop the connection: a target
// that streams megabytes must not tie up a delivery slot.
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
  return { target, agent, origin: url.origin, path: url.pathname + url.search, authorization }
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

function describeError (err: unknown, signal: AbortSignal, shutdown: AbortSignal, timeoutMs: number): string {
  if (shutdown.aborted) return 'aborted: storehook is shutting down'
  if (signal.aborted || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return `timeout after ${timeoutMs} ms`
  }
  const e = err as { code?: string; message?: string }
  // undici's messages name host and port at most, never the path or query
  // where tokens live; keep it that way by preferring the code.
  return e.code !== undefined ? `${e.code}${e.message !== undefined ? ': ' + e.message.slice(0, 200) : ''}` : String(e.message ?? err).slice(0, 200)
}

export async function deliver (client: TargetClient, req: DeliveryRequest, shutdown: AbortSignal): Promise<DeliveryOutcome> {
  const target = client.target
  const started = performance.now()
  const signal = AbortSignal.any([shutdown, AbortSignal.timeout(target.timeoutMs)])
  const elapsed = (): number => Math.round(performance.now() - started)
  try {
    const res = await client.agent.request({
      origin: client.origin,
      path: client.path,
      method: 'POST',
      headers: buildHeaders(client, req, Date.now()),
      body: req.body,
      signal
    })
    const chunks: Buffer[] = []
    let seen = 0
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (seen < EXCERPT_BYTES) chunks.push(chunk.subarray(0, EXCERPT_BYTES - seen))
        seen += chunk.length
        if (seen > DRAIN_LIMIT_BYTES) {
          res.body.destroy()
          break
        }
      }
    } catch {
      // The status is what counts; a broken answer body does not change it.
    }
    const ok = res.statusCode >= 200 && res.statusCode < 300
    const excerpt = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : null
    return {
      ok,
      statusCode: res.statusCode,
      error: ok ? null : `HTTP ${res.statusCode}`,
      retryAfterMs: ok ? null : parseRetryAfter(res.headers['retry-after'], Date.now()),
      responseExcerpt: excerpt,
      durationMs: elapsed(),
      aborted: false
    }
  } catch (err) {
    return {
      ok: false,
      statusCode: null,
      error: describeError(err, signal, shutdown, target.timeoutMs),
      retryAfterMs: null,
      responseExcerpt: null,
      durationMs: elapsed(),
      aborted: shutdown.aborted
    }
  }
}
