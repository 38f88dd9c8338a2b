// A local App Store Server API for tests: a real HTTP server on 127.0.0.1
// that checks every request's JWT as Apple does (ES256, kid, iss, aud, bid,
// exp) against the public half of Apple's library test key, serves paged
// notification history from the notifications it is given, can fail on
// demand (429 with Retry-After, 401, 500), and runs the test-notification
// flow by really POSTing a signed TEST notification to storehook.
import { once } from 'node:events'
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { jwtVerify } from 'jose'
import { notificationPayload, signNotification, type Chain } from './apple-chain.ts'

export const KEY_PATH = fileURLToPath(new URL('../fixtures/apple/library-vectors/certs/testSigningKey.p8', import.meta.url))
export const ISSUER_ID = '57246542-96fe-1a63-e053-0824d011072a'
export const KEY_ID = 'ABCDEFGHIJ'

export interface Stored {
  signedPayload: string
  signedDate: number
  // onlyFailures returns only these (Apple's view: it never got a 2xx).
  failed: boolean
}

export interface Seen {
  method: string
  path: string
  body: Record<string, unknown> | null
  bid: string | null
  status: number
}

export interface MockAppleApi {
  url: string
  requests: Seen[]
  notifications: Stored[]
  add: (signedPayload: string, o?: { signedDate?: number; failed?: boolean }) => void
  // The next `times` calls answer `status` (429 carries Retry-After: retryAfterS).
  failNext: (status: number, times: number, retryAfterS?: number) => void
  // Holds every history page at or after `page` (0-based) until release().
  holdFrom: (page: number) => void
  release: () => void
  // How many history requests are being held now.
  held: () => number
  waitForRequests: (n: number, timeoutMs?: number) => Promise<void>
  // Where test notifications go (null: nowhere answers, reported as `unreachableResult`).
  deliverTestsTo: (url: string | null, chain: Chain, unreachableResult?: string) => void
  close: () => Promise<void>
}

export interface MockOptions {
  bundleIds?: string[]
  pageSize?: number
}

const publicKey = createPublicKey(createPrivateKey(readFileSync(KEY_PATH, 'utf8')))

export async function startAppleApi (o: MockOptions = {}): Promise<MockAppleApi> {
  const bundleIds = o.bundleIds ?? ['com.example']
  const pageSize = o.pageSize ?? 20
  const notifications: Stored[] = []
  const requests: Seen[] = []
  const failures: Array<{ status: number; retryAfterS?: number }> = []
  const tests = new Map<string, { signedPayload: string; sendAttempts: Array<{ attemptDate: number; sendAttemptResult: string }> }>()
  const tokens = new Map<string, number>()
  let holdFrom = Infinity
  let releaseHeld: Array<() => void> = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const prefix = randomUUID()
  const delivery: { url: string | null; chain: Chain | null; unreachableResult: string } = { url: null, chain: null, unreachableResult: 'NO_RESPONSE' }

  async function authorize (header: string | undefined): Promise<string | null> {
    if (header?.startsWith('Bearer ') !== true) return null
    try {
      const { payload, protectedHeader } = await jwtVerify(header.slice(7), publicKey, { algorithms: ['ES256'], issuer: ISSUER_ID, audience: 'appstoreconnect-v1', requiredClaims: ['iat', 'exp', 'bid'] })
      if (protectedHeader.kid !== KEY_ID || protectedHeader.typ !== 'JWT') return null
      if (typeof payload.bid !== 'string' || !bundleIds.includes(payload.bid)) return null
      if (payload.exp! - payload.iat! > 1200) return null
      return payload.bid
    } catch {
      return null
    }
  }

  async function sendTest (bid: string, token: string): Promise<void> {
    if (delivery.chain === null) throw new Error('call deliverTestsTo() before asking for a test notification')
    const signedPayload = signNotification(delivery.chain, notificationPayload({ bundleId: bid, environment: 'Sandbox' }))
    const entry = tests.get(token)!
    entry.signedPayload = signedPayload
    let result: string
    if (delivery.url === null) result = delivery.unreachableResult
    else {
      try {
        const res = await fetch(delivery.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ signedPayload }) })
        await res.arrayBuffer()
        result = res.ok ? 'SUCCESS' : 'UNSUCCESSFUL_HTTP_RESPONSE_CODE'
      } catch {
        result = 'NO_RESPONSE'
      }
    }
    entry.sendAttempts.push({ attemptDate: Date.now(), sendAttemptResult: result })
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { void handle(Buffer.concat(chunks)) })
    async function handle (raw: Buffer): Promise<void> {
      const url = new URL(req.url ?? '/', 'http://mock')
      let body: Record<string, unknown> | null = null
      try { body = raw.length > 0 ? JSON.parse(raw.toString()) as Record<string, unknown> : null } catch {}
      const seen: Seen = { method: req.method ?? '', path: url.pathname + url.search, body, bid: null, status: 0 }
      const answer = (status: number, json?: unknown, headers: Record<string, string> = {}): void => {
        seen.status = status
        requests.push(seen)
        for (const w of [...waiters]) if (requests.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
        res.writeHead(status, { ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }).end(json !== undefined ? JSON.stringify(json) : undefined)
      }
      const bid = await authorize(req.headers.authorization)
      seen.bid = bid
      if (bid === null) { answer(401); return }
      const failure = failures.shift()
      if (failure !== undefined) {
        if (failure.status === 429) answer(429, { errorCode: 4290000, errorMessage: 'Rate limit exceeded.' }, { 'retry-after': String(failure.retryAfterS ?? 1) })
        else if (failure.status === 401) answer(401)
        else answer(failure.status, { errorCode: 5000000, errorMessage: 'An unknown error occurred.' })
        return
      }
      if (req.method === 'POST' && url.pathname === '/inApps/v1/notifications/history') {
        const start = Number(body?.startDate)
        const end = Number(body?.endDate)
        if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) { answer(400, { errorCode: 4000016, errorMessage: 'Invalid start or end date.' }); return }
        const tokenParam = url.searchParams.get('paginationToken')
        let offset = 0
        if (tokenParam !== null) {
          const known = tokens.get(tokenParam)
          if (known === undefined) { answer(400, { errorCode: 4000006, errorMessage: 'Invalid pagination token.' }); return }
          offset = known
        }
        const matching = notifications
          .filter((n) => n.signedDate >= start && n.signedDate < end && (body?.onlyFailures !== true || n.failed))
          .sort((a, b) => a.signedDate - b.signedDate)
        const page = offset / pageSize
        if (page >= holdFrom) await new Promise<void>((resolve) => releaseHeld.push(resolve))
        const slice = matching.slice(offset, offset + pageSize)
        const hasMore = offset + pageSize < matching.length
        let next: string | undefined
        if (hasMore) {
          next = `${prefix}-${offset + pageSize}`
          tokens.set(next, offset + pageSize)
        }
        answer(200, {
          notificationHistory: slice.map((n) => ({ signedPayload: n.signedPayload, sendAttempts: [{ attemptDate: n.signedDate, sendAttemptResult: n.failed ? 'NO_RESPONSE' : 'SUCCESS' }] })),
          hasMore,
          ...(next !== undefined ? { paginationToken: next } : {})
        })
        return
      }
      if (req.method === 'POST' && url.pathname === '/inApps/v1/notifications/test') {
        const token = randomUUID()
        tests.set(token, { signedPayload: '', sendAttempts: [] })
        answer(200, { testNotificationToken: token })
        void sendTest(bid, token)
        return
      }
      const m = /^\/inApps\/v1\/notifications\/test\/([^/]+)$/.exec(url.pathname)
      if (req.method === 'GET' && m !== null) {
        const entry = tests.get(decodeURIComponent(m[1]!))
        if (entry === undefined) { answer(404, { errorCode: 4040008, errorMessage: 'Test notification not found.' }); return }
        answer(200, { ...(entry.signedPayload !== '' ? { signedPayload: entry.signedPayload } : {}), sendAttempts: entry.sendAttempts })
        return
      }
      answer(404, { errorCode: 4040000, errorMessage: 'Not found.' })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const release = (): void => {
    holdFrom = Infinity
    const held = releaseHeld
    releaseHeld = []
    for (const r of held) r()
  }
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    notifications,
    add (signedPayload, opts = {}) {
      notifications.push({ signedPayload, signedDate: opts.signedDate ?? Date.now() - 60_000, failed: opts.failed ?? true })
    },
    failNext (status, times, retryAfterS) {
      for (let i = 0; i < times; i++) failures.push({ status, retryAfterS })
    },
    holdFrom (page) { holdFrom = page },
    deliverTestsTo (url, chain, unreachableResult = 'NO_RESPONSE') {
      Object.assign(delivery, { url, chain, unreachableResult })
    },
    held: () => releaseHeld.length,
    release,
    waitForRequests (n, timeoutMs = 15_000) {
      if (requests.length >= n) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`mock got ${requests.length} of ${n} requests`)), timeoutMs)
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve() } })
      })
    },
    async close () {
      release()
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
}
