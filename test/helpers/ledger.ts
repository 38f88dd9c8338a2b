// The fault tests' ledger: what storehook acknowledged (answered 200) on one
// side, what each target accepted (answered 200 to) on the other. Real HTTP
// both ways; a flapping target really stops listening in its "down" phase.
import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { v2Body } from './notifications.ts'
import { startTarget, type Received, type Target } from './target.ts'

export interface LedgerTarget {
  url: string
  // notification id -> how many times this target answered 200 for it.
  delivered: Map<string, number>
  // notification id -> the SHA-256 of every body this target answered 200 to.
  digests: Map<string, Set<string>>
  // every request that reached the target, whatever it answered.
  requests: number
  // requests received and not answered yet (with delayMs).
  inFlight: number
  // Stops flapping and answers 200 from now on.
  steady: () => Promise<void>
  close: () => Promise<void>
}

type Phase = 'ok' | 'error' | 'down'

// delayMs: each answer waits this long, so deliveries are in flight (leased,
// not yet settled) at any moment a fault strikes.
export async function startLedgerTarget (opts: { flapMs?: number; port?: number; delayMs?: number } = {}): Promise<LedgerTarget> {
  let phase: Phase = 'ok'
  let target: Target | null = null
  const delivered = new Map<string, number>()
  const digests = new Map<string, Set<string>>()
  const self = { requests: 0, inFlight: 0 }
  const answer = (r: Received, res: ServerResponse): void => {
    self.inFlight--
    if (phase !== 'ok') { res.writeHead(500).end('flapping'); return }
    const id = String(r.headers['x-storehook-notification-id'])
    delivered.set(id, (delivered.get(id) ?? 0) + 1)
    const seen = digests.get(id) ?? new Set<string>()
    seen.add(sha256(r.body))
    digests.set(id, seen)
    res.writeHead(200).end('{}')
  }
  const responder = (r: Received, _n: number, res: ServerResponse): void => {
    self.requests++
    self.inFlight++
    if (opts.delayMs === undefined) answer(r, res)
    else setTimeout(() => answer(r, res), opts.delayMs)
  }
  target = await startTarget(responder, '/hook', opts.port ?? 0)
  const url = target.url
  const port = Number(new URL(url).port)
  let timer: NodeJS.Timeout | null = null
  let cycling: Promise<void> = Promise.resolve()
  if (opts.flapMs !== undefined) {
    // ok -> 500 -> connection refused -> ok ...
    timer = setInterval(() => {
      cycling = cycling.then(async () => {
        if (phase === 'ok') phase = 'error'
        else if (phase === 'error') {
          phase = 'down'
          await target?.close()
          target = null
        } else {
          target = await startTarget(responder, '/hook', port)
          phase = 'ok'
        }
      })
    }, opts.flapMs)
  }
  const stopFlapping = async (): Promise<void> => {
    if (timer !== null) clearInterval(timer)
    timer = null
    await cycling
  }
  return {
    url,
    delivered,
    digests,
    get requests () { return self.requests },
    get inFlight () { return self.inFlight },
    async steady () {
      await stopFlapping()
      phase = 'ok'
      if (target === null) target = await startTarget(responder, '/hook', port)
    },
    async close () {
      await stopFlapping()
      await target?.close()
      target = null
    }
  }
}

export interface Load {
  // notification id -> the body storehook acknowledged with a 200.
  acknowledged: Map<string, Buffer>
  statuses: Map<number | string, number>
  stop: () => Promise<void>
}

// `connections` posters sending distinct 1-10 KB V2 bodies back to back to
// whatever URL `baseUrl()` says at that moment (the server may be restarting).
export function startLoad (baseUrl: () => string | null, connections: number, makeBody: () => Buffer = () => v2Body({ padTo: 1000 + Math.floor(Math.random() * 9000) })): Load {
  const acknowledged = new Map<string, Buffer>()
  const statuses = new Map<number | string, number>()
  const count = (k: number | string): void => { statuses.set(k, (statuses.get(k) ?? 0) + 1) }
  let running = true
  const poster = async (): Promise<void> => {
    while (running) {
      const base = baseUrl()
      if (base === null) { await new Promise((resolve) => setTimeout(resolve, 20)); continue }
      const body = makeBody()
      try {
        const res = await fetch(`${base}/apple/notifications`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
        const json = await res.json() as { id?: string }
        count(res.status)
        if (res.status === 200 && json.id !== undefined) acknowledged.set(json.id, body)
      } catch {
        // The server died under us: not acknowledged, as Apple would see it.
        count('network error')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
  const posters = Array.from({ length: connections }, poster)
  return {
    acknowledged,
    statuses,
    async stop () { running = false; await Promise.all(posters) }
  }
}

export function missing (acknowledged: Map<string, Buffer>, target: LedgerTarget): string[] {
  return [...acknowledged.keys()].filter((id) => !target.delivered.has(id))
}

const sha256 = (body: Buffer): string => createHash('sha256').update(body).digest('hex')

// Acknowledged notifications that reached the target as other bytes than
// storehook acknowledged (bodies are stored compressed, and forwarded as they
// came): by SHA-256, every copy the target answered 200 to.
export function altered (acknowledged: Map<string, Buffer>, target: LedgerTarget): string[] {
  return [...acknowledged].filter(([id, body]) => {
    const seen = target.digests.get(id)
    return seen !== undefined && (seen.size !== 1 || !seen.has(sha256(body)))
  }).map(([id]) => id)
}

export function duplicates (target: LedgerTarget): number {
  let n = 0
  for (const c of target.delivered.values()) if (c > 1) n += c - 1
  return n
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const QUICK = process.env.FAULTS_QUICK === '1'
