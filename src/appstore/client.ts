// A small App Store Server API client: the three notification endpoints
// storehook needs (Get Notification History, Request a Test Notification, Get
// Test Notification Status). Written by hand rather than taken from
// @apple/app-store-server-library because that library fixes its base URL to
// Apple's two hosts (the tests must point it at a local mock through
// APPLE_API_BASE_URL), has no retry with Retry-After, and would be a runtime
// dependency for three POST/GET calls. The JWT is signed by `jose`, HTTP goes
// through undici, short in-process retries through p-retry.
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import pRetry, { AbortError } from 'p-retry'
import { request } from 'undici'
import type { AppleApiApp } from '../config.ts'
import type { ApiEnvironment } from '../db/vocabulary.ts'

// The environments this client can talk to; their list is the vocabulary's.
export { API_ENVIRONMENTS, type ApiEnvironment } from '../db/vocabulary.ts'

export interface SendAttempt {
  attemptDate: number
  sendAttemptResult: string
}

export interface HistoryItem {
  signedPayload: string
  sendAttempts?: SendAttempt[]
}

export interface HistoryPage {
  notificationHistory: HistoryItem[]
  hasMore: boolean
  paginationToken?: string
}

export interface HistoryRequest {
  startDate: number
  endDate: number
  onlyFailures?: boolean
  notificationType?: string
}

export interface TestNotificationStatus {
  signedPayload?: string
  sendAttempts?: SendAttempt[]
}

// What went wrong, said for the operator. `status` 0: no HTTP answer at all.
export class AppleApiError extends Error {
  readonly status: number
  readonly apiCode: number | null
  readonly retryAfterMs: number | null
  constructor (message: string, status: number, apiCode: number | null = null, retryAfterMs: number | null = null) {
    super(message)
    this.name = 'AppleApiError'
    this.status = status
    this.apiCode = apiCode
    this.retryAfterMs = retryAfterMs
  }
}

export interface ClientOptions {
  app: AppleApiApp
  environment: ApiEnvironment
  baseUrl: string
  // Bounded: a few quick tries inside one call. A catch-up that still fails is
  // tried again at the next interval; a backfill can be run again and resumes.
  retries?: number
  minRetryDelayMs?: number
  // Retry-After beyond this is not waited for inside one call.
  maxRetryAfterMs?: number
  timeoutMs?: number
  signal?: AbortSignal
}

const TOKEN_LIFETIME_S = 300 // Apple allows up to 20 minutes; five is plenty for one call.

function explain (status: number, environment: ApiEnvironment, apiCode: number | null, apiMessage: string | null): string {
  const apple = apiMessage !== null ? ` Apple says: ${apiMessage}${apiCode !== null ? ` (${apiCode})` : ''}.` : ''
  switch (true) {
    case status === 401:
      return `App Store Server API ${environment} answered 401 Unauthorized: the key, key ID or issuer ID is wrong, the key was revoked, or the bundle ID does not belong to this team.${environment === 'Production' ? ' Apple also answers 401 in Production until the app has been approved at least once; use Sandbox until then.' : ''}${apple}`
    case status === 404:
      return `App Store Server API ${environment} answered 404 Not Found (no such resource, or the bundle ID is unknown to Apple).${apple}`
    case status === 429:
      return `App Store Server API ${environment} answered 429 Too Many Requests: the rate limit was hit; try again later.${apple}`
    case status >= 500:
      return `App Store Server API ${environment} answered ${status}: Apple's side failed; try again later.${apple}`
    default:
      return `App Store Server API ${environment} answered ${status}.${apple}`
  }
}

function retryAfter (header: string | string[] | undefined): number | null {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return null
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now())
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  if (signal?.aborted === true) { reject(signal.reason); return }
  const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
  const onAbort = (): void => { clearTimeout(timer); reject(signal!.reason) }
  signal?.addEventListener('abort', onAbort, { once: true })
})

export class AppStoreClient {
  readonly environment: ApiEnvironment
  readonly bundleId: string
  #app: AppleApiApp
  #key: KeyObject
  #base: string
  #opts: Required<Pick<ClientOptions, 'retries' | 'minRetryDelayMs' | 'maxRetryAfterMs' | 'timeoutMs'>> & { signal?: AbortSignal }

  constructor (options: ClientOptions) {
    this.environment = options.environment
    this.bundleId = options.app.bundleId
    this.#app = options.app
    this.#key = createPrivateKey(options.app.privateKeyPem)
    this.#base = options.baseUrl.replace(/\/+$/, '')
    this.#opts = {
      retries: options.retries ?? 4,
      minRetryDelayMs: options.minRetryDelayMs ?? 1000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      timeoutMs: options.timeoutMs ?? 30_000,
      signal: options.signal
    }
  }

  // A fresh token per request: cheap (one ECDSA signature) and never stale.
  async #token (): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    return await new SignJWT({ bid: this.#app.bundleId })
      .setProtectedHeader({ alg: 'ES256', kid: this.#app.keyId, typ: 'JWT' })
      .setIssuer(this.#app.issuerId)
      .setIssuedAt(now)
      .setExpirationTime(now + TOKEN_LIFETIME_S)
      .setAudience('appstoreconnect-v1')
      .sign(this.#key)
  }

  async #once (method: 'GET' | 'POST', path: string, body: unknown): Promise<unknown> {
    const token = await this.#token()
    let res
    try {
      res = await request(`${this.#base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        headersTimeout: this.#opts.timeoutMs,
        bodyTimeout: this.#opts.timeoutMs,
        signal: this.#opts.signal
      })
    } catch (err) {
      if (this.#opts.signal?.aborted === true) throw new AbortError(err as Error)
      // The URL is Apple's (or the mock's) host: no secret in it, but the token is never in the message.
      throw new AppleApiError(`App Store Server API ${this.environment} could not be reached (${new URL(this.#base).host}): ${(err as { code?: string }).code ?? (err as Error).message}`, 0)
    }
    const text = await res.body.text()
    let json: Record<string, unknown> | null = null
    try { json = JSON.parse(text) as Record<string, unknown> } catch {}
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (json === null) throw new AppleApiError(`App Store Server API ${this.environment} answered ${res.statusCode} with a body that is not JSON.`, res.statusCode)
      return json
    }
    const apiCode = typeof json?.errorCode === 'number' ? json.errorCode : null
    const apiMessage = typeof json?.errorMessage === 'string' ? json.errorMessage : null
    throw new AppleApiError(explain(res.statusCode, this.environment, apiCode, apiMessage), res.statusCode, apiCode, retryAfter(res.headers['retry-after']))
  }

  // 429, 5xx and network failures are retried (429 after its Retry-After);
  // anything else (401, 404, 400) is an answer and is not.
  async #call (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    return await pRetry(async () => {
      try {
        return await this.#once(method, path, body)
      } catch (err) {
        if (err instanceof AppleApiError && err.status !== 0 && err.status !== 429 && err.status < 500) throw new AbortError(err)
        throw err
      }
    }, {
      retries: this.#opts.retries,
      minTimeout: this.#opts.minRetryDelayMs,
      factor: 2,
      signal: this.#opts.signal,
      onFailedAttempt: async ({ error, retriesLeft }) => {
        if (retriesLeft > 0 && error instanceof AppleApiError && error.retryAfterMs !== null) {
          await sleep(Math.min(error.retryAfterMs, this.#opts.maxRetryAfterMs), this.#opts.signal)
        }
      }
    })
  }

  async notificationHistory (req: HistoryRequest, paginationToken: string | null): Promise<HistoryPage> {
    const q = paginationToken === null ? '' : `?paginationToken=${encodeURIComponent(paginationToken)}`
    const body = { startDate: req.startDate, endDate: req.endDate, ...(req.onlyFailures === true ? { onlyFailures: true } : {}), ...(req.notificationType !== undefined ? { notificationType: req.notificationType } : {}) }
    const page = await this.#call('POST', `/inApps/v1/notifications/history${q}`, body) as Partial<HistoryPage>
    if (!Array.isArray(page.notificationHistory)) throw new AppleApiError(`App Store Server API ${this.environment} answered a history page without notificationHistory.`, 200)
    return { notificationHistory: page.notificationHistory, hasMore: page.hasMore === true, ...(typeof page.paginationToken === 'string' ? { paginationToken: page.paginationToken } : {}) }
  }

  async requestTestNotification (): Promise<string> {
    const r = await this.#call('POST', '/inApps/v1/notifications/test') as { testNotificationToken?: unknown }
    if (typeof r.testNotificationToken !== 'string') throw new AppleApiError(`App Store Server API ${this.environment} answered without a testNotificationToken.`, 200)
    return r.testNotificationToken
  }

  async testNotificationStatus (token: string): Promise<TestNotificationStatus> {
    return await this.#call('GET', `/inApps/v1/notifications/test/${encodeURIComponent(token)}`) as TestNotificationStatus
  }
}

export function clientsFor (config: { apps: AppleApiApp[]; baseUrls: Record<ApiEnvironment, string> }, environments: readonly ApiEnvironment[], extra: Omit<ClientOptions, 'app' | 'environment' | 'baseUrl'> = {}): AppStoreClient[] {
  return config.apps.flatMap((app) => environments.map((environment) => new AppStoreClient({ app, environment, baseUrl: config.baseUrls[environment], ...extra })))
}
