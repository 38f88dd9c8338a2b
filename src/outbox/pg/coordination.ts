// How storehook instances sharing one PostgreSQL database coordinate (issue
// 16): they wake each other's workers with LISTEN/NOTIFY, and take turns at
// background jobs with advisory locks.
//
// Wake-ups. A write that leaves rows for a target's worker to claim (an
// enqueue not leased to this instance, a replay, a delivery given back)
// sends NOTIFY in its own transaction, so the wake-up is delivered only if,
// and once, the rows are committed. Every instance keeps one connection of
// its own (not from the pool: a pooled connection is shared and may be
// dropped while idle) listening on the channel, and wakes its workers for
// the targets named. Kept alive by hand rather than with pg-listen (1.7.0,
// read for this): when the LISTEN after a reconnect fails it reports an
// error and stays connected but deaf, with nothing left to retry it, and by
// default it gives up reconnecting after 3 s. Here a reconnect is one
// attempt (connect, then LISTEN) retried on p-retry's schedule until it
// succeeds or the storage closes.
//
// Notifications sent while the listener was disconnected are lost, so each
// time it reconnects every target with pending rows is woken once.
import { createHash, randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { FastifyBaseLogger } from 'fastify'
import pRetry from 'p-retry'
import pg from 'pg'
import type { Exclusive } from '../engine.ts'
import type { Q } from './connection.ts'

export type Log = Pick<FastifyBaseLogger, 'info' | 'warn'>

export const WAKE_CHANNEL = 'storehook_wake'

// PostgreSQL refuses a payload of 8000 bytes or more. Target names are the
// configured ones, so a list this long is unusual but possible: it is then
// sent as null, which wakes every target with pending rows instead.
const MAX_PAYLOAD = 7_900

interface Wake {
  // The sending instance: an instance's own writes wake its workers in process already.
  from: string
  // null: every target with pending rows.
  targets: readonly string[] | null
}

export function wakePayload (from: string, targets: readonly string[]): string {
  const payload = JSON.stringify({ from, targets } satisfies Wake)
  return Buffer.byteLength(payload) < MAX_PAYLOAD ? payload : JSON.stringify({ from, targets: null } satisfies Wake)
}

// In the caller's transaction: delivered to the listeners on COMMIT, never on ROLLBACK.
export async function notifyTargets (q: Q, from: string, targets: readonly string[]): Promise<void> {
  if (targets.length === 0) return
  await q.execute(sql`SELECT pg_notify(${WAKE_CHANNEL}, ${wakePayload(from, targets)})`)
}

// The target of one delivery, named in SQL: no round trip to read it first.
export async function notifyDeliveryTarget (q: Q, from: string, deliveryId: number): Promise<void> {
  await q.execute(sql`SELECT pg_notify(${WAKE_CHANNEL}, json_build_object('from', ${from}::text, 'targets', json_build_array(target))::text)
    FROM deliveries WHERE id = ${deliveryId}`)
}

function parseWake (payload: string | undefined): Wake | null {
  try {
    const w = JSON.parse(payload ?? '') as Partial<Wake>
    if (typeof w.from !== 'string') return null
    if (w.targets === null) return { from: w.from, targets: null }
    return Array.isArray(w.targets) && w.targets.every((t) => typeof t === 'string') ? { from: w.from, targets: w.targets } : null
  } catch {
    // Someone else's NOTIFY on this channel: not ours to act on.
    return null
  }
}

export interface ListenerOptions {
  url: string
  // This instance's id, as its own NOTIFY payloads carry it.
  instance: string
  // Targets with rows to claim, committed by another instance; null: every target with pending rows.
  onWake: (targets: readonly string[] | null) => void
  log?: Log
  minRetryMs?: number
  maxRetryMs?: number
}

// The listening connection: opened at once, re-opened after it breaks, with
// backoff, logged once per outage; it never throws into the process.
export class WakeListener {
  readonly instance: string
  #o: ListenerOptions
  #client: pg.Client | null = null
  #abort = new AbortController()
  #loop: Promise<void> = Promise.resolve()
  // How many times the connection has been (re-)established, how many
  // reconnects failed, and who waits for the next connection (tests).
  connections = 0
  failedAttempts = 0
  #waiting: Array<() => void> = []

  constructor (o: ListenerOptions) {
    this.#o = o
    this.instance = o.instance
  }

  // The first connection is made before the storage opens, so that no
  // worker starts before the wake-ups can reach it; failing it fails the
  // start, as a database that cannot be reached does.
  static async open (o: ListenerOptions): Promise<WakeListener> {
    const listener = new WakeListener(o)
    await listener.#connect()
    return listener
  }

  #reconnect (): void {
    if (this.#abort.signal.aborted) return
    // Failed attempts are not logged: the outage was, once, when the connection was lost.
    this.#loop = pRetry(() => this.#connect(), {
      retries: Infinity,
      minTimeout: this.#o.minRetryMs ?? 250,
      maxTimeout: this.#o.maxRetryMs ?? 10_000,
      randomize: true,
      signal: this.#abort.signal,
      onFailedAttempt: () => { this.failedAttempts++ }
    }).then(() => {
      this.#o.log?.info('Listening for other instances\' wake-ups again; waking every target with pending deliveries.')
      // Whatever was notified while disconnected is lost.
      this.#o.onWake(null)
    }, () => { /* aborted: closing */ })
  }

  async #connect (): Promise<void> {
    const client = new pg.Client({ connectionString: this.#o.url, connectionTimeoutMillis: 10_000, keepAlive: true })
    // Set once the LISTEN is in place: a failure before that is the attempt's, which p-retry retries.
    let live = false
    let broken = false
    const lost = (err?: Error): void => {
      if (!live || broken) return
      broken = true
      if (this.#client === client) this.#client = null
      void client.end().catch(() => {})
      if (this.#abort.signal.aborted) return
      this.#o.log?.warn({ error: err?.message ?? 'connection ended' }, 'The connection listening for other instances\' wake-ups was lost; reconnecting.')
      this.#reconnect()
    }
    // Without listeners an 'error' would be thrown and end the process.
    client.on('error', lost)
    try {
      await client.connect()
      await client.query(`LISTEN ${WAKE_CHANNEL}`)
    } catch (err) {
      await client.end().catch(() => {})
      throw err
    }
    if (this.#abort.signal.aborted) {
      await client.end().catch(() => {})
      return
    }
    client.on('end', () => { lost() })
    client.on('notification', (n) => {
      if (n.channel !== WAKE_CHANNEL) return
      const wake = parseWake(n.payload)
      if (wake === null || wake.from === this.instance) return
      this.#o.onWake(wake.targets)
    })
    this.#client = client
    live = true
    this.connections++
    for (const resolve of this.#waiting.splice(0)) resolve()
  }

  // Resolves when the connection is next established.
  nextConnection (): Promise<void> {
    return new Promise((resolve) => { this.#waiting.push(resolve) })
  }

  // Safe twice.
  async close (): Promise<void> {
    this.#abort.abort()
    await this.#loop
    const client = this.#client
    this.#client = null
    await client?.end().catch(() => {})
  }
}

export const newInstanceId = (): string => randomUUID()

// An advisory lock key for a job's name: the first 8 bytes of its SHA-256,
// so every instance derives the same key, under a prefix that keeps it apart
// from the migration lock (pg-client.ts) and from other apps' keys.
export function lockKey (name: string): string {
  return createHash('sha256').update(`storehook:${name}`).digest().readBigInt64BE(0).toString()
}

// Background jobs one instance at a time: a session advisory lock per job,
// held while `fn` runs, or a skip when another session holds it. Session,
// not transaction: the jobs run many transactions of their own over minutes
// (catch-up pages, batches, a probe on the wire). Every lock of an instance
// is held on one connection of its own, not from the pool: a probe per
// failing target, catch-up and retention each holding a pooled connection
// could starve ingest of the pool. If that connection breaks mid-job its
// locks are gone while the jobs run on, and the next job opens another;
// every job run under these locks is also safe to run twice at once (they
// save work, API calls and probes; correctness never rests on them).
export class Locks {
  #url: string
  #session: Promise<pg.Client> | null = null
  // Jobs this instance runs now: a session may take its own lock again, so
  // a second run here is refused here.
  #held = new Set<string>()
  #closed = false

  constructor (url: string) {
    this.#url = url
  }

  #connect (): Promise<pg.Client> {
    if (this.#session !== null) return this.#session
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 10_000, query_timeout: 35_000, keepAlive: true })
    const session = client.connect().then(() => client)
    this.#session = session
    const drop = (): void => {
      if (this.#session === session) this.#session = null
      void client.end().catch(() => {})
    }
    // Without a listener an 'error' would be thrown and end the process.
    client.on('error', drop)
    client.on('end', drop)
    session.catch(drop)
    return session
  }

  async tryExclusive<T> (name: string, fn: () => Promise<T>): Promise<Exclusive<T>> {
    if (this.#closed) throw new Error('storage is closed')
    if (this.#held.has(name)) return { ran: false }
    this.#held.add(name)
    try {
      const key = lockKey(name)
      const client = await this.#connect()
      if (!(await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0]!.ok) return { ran: false }
      try {
        return { ran: true, value: await fn() }
      } finally {
        // On the session that took it: a broken one has lost it already.
        await client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {})
      }
    } finally {
      this.#held.delete(name)
    }
  }

  // After every job has ended. Safe twice.
  async close (): Promise<void> {
    this.#closed = true
    const session = this.#session
    this.#session = null
    await session?.then((c) => c.end(), () => {}).catch(() => {})
  }
}
