// The PostgreSQL engine (issue 16): the Storage interface of ../engine.ts on
// a node-postgres pool, for several storehook instances sharing one
// database. Each ordered write is one transaction of its own (writes.ts),
// committed before its promise resolves, but enqueues: those arriving
// together share one (group-commit.ts), still committed before each one's
// promise resolves. Reads run on any connection of the pool and see what is
// committed (reads.ts).
//
// Ordering. With a pool, writes asked for one after another run at once on
// different connections, so the SQLite engine's single queue does not exist
// here. What the interface promises (an op numbered n sees every write
// numbered below n) is kept for the op that depends on it, the claim: a
// claim numbered n starts its statement only once every write numbered
// below n has committed (or failed). Other writes do not wait for each
// other: an outcome is only ever written after the claim it settles, and
// ingest must not queue behind a slow compaction batch. The dispatcher's
// wake-ups (onEnqueued, with the number from which a claim sees the rows)
// therefore mean the same on both engines. Writes by other instances are
// not numbered here: they wake this instance's workers through
// LISTEN/NOTIFY (coordination.ts), already committed when the notification
// arrives, so a claim numbered from then on sees them.
//
// Failure. A database that is down or unreachable makes an op reject (the
// pool's connect timeout, the statement timeout: pg-client.ts), never hang;
// the ingest route answers 503, workers retry on their poll, and the pool
// opens new connections once the database is back: no restart needed.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DrizzleQueryError } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import pRetry from 'p-retry'
import { ConfigError } from '../../config.ts'
import { maskedUrl, migratePg, openPg, pgMigrationsFolder, synchronousCommit, type PgDatabase, type PgOptions } from '../../db/pg-client.ts'
import type * as engine from '../engine.ts'
import { inTransaction, type Durability, type Q } from './connection.ts'
import { PgGroupCommit } from './group-commit.ts'
import { Locks, newInstanceId, notifyDeliveryTarget, notifyTargets, WakeListener, type Log } from './coordination.ts'
import { Wakeups } from '../wakeups.ts'
import * as alerts from './alerts.ts'
import type { AlertEvent } from '../../db/vocabulary.ts'
import * as reads from './reads.ts'
import * as writes from './writes.ts'

// drizzle wraps a failed statement's error in one that carries the SQL and
// its parameters (a body, transaction ids) in its message and fields: logged
// as it is (a claim that failed, a 503), a database outage would write
// payloads into the logs. Ops reject with the driver's own error instead,
// which says what went wrong (connection refused, a timeout) and no more.
function driverError (err: unknown): unknown {
  return err instanceof DrizzleQueryError && err.cause !== undefined ? err.cause : err
}

export interface PgStorageOptions extends PgOptions {
  url: string
  // Where the wake-up listener says it lost its connection, and got it back.
  log?: Log
  // The listener's reconnect backoff (tests shorten it).
  listenRetryMs?: { min: number; max: number }
}

// Applies pending migrations (under the advisory lock of pg-client.ts, so
// instances starting together do not race), opens the pool and checks that
// a COMMIT waits for its WAL flush. With synchronous_commit off, COMMIT
// returns before the flush and a crash of the database server could lose a
// notification already answered 200: the one promise storehook makes. So
// it refuses to start, saying how to fix it at the database, rather than
// run with a weaker promise than the README states.
export async function openPgStorage (options: PgStorageOptions): Promise<{ outbox: PgStorage; applied: number }> {
  const applied = await migratePg(options.url)
  const database = openPg(options.url, options)
  const instance = newInstanceId()
  let listener: WakeListener | null = null
  // Set once the storage exists: a wake-up can only arrive after that.
  let storage: PgStorage | null = null
  try {
    const commit = await synchronousCommit(database)
    if (!commit.flushedBeforeCommit) {
      throw new ConfigError('DATABASE_URL', `${maskedUrl(options.url)} reports synchronous_commit = ${commit.setting}: a COMMIT would not wait for its WAL flush, ` +
        'so a notification answered 200 could be lost to a database crash. Set it on for storehook\'s role (ALTER ROLE <role> SET synchronous_commit = on).')
    }
    listener = await WakeListener.open({
      url: options.url,
      instance,
      onWake: (targets) => { storage?.woken(targets) },
      ...(options.log !== undefined ? { log: options.log } : {}),
      ...(options.listenRetryMs !== undefined ? { minRetryMs: options.listenRetryMs.min, maxRetryMs: options.listenRetryMs.max } : {})
    })
  } catch (err) {
    await database.close()
    throw err
  }
  storage = new PgStorage(database, listener)
  return { outbox: storage, applied }
}

export class PgStorage implements engine.Storage {
  #database: PgDatabase
  #next = 1
  // Ordered writes not yet settled, but claims: every one of them was asked
  // for before any claim numbered above it.
  #writes = new Map<number, Promise<unknown>>()
  // Every op not yet settled: close waits for them.
  #inflight = new Set<Promise<unknown>>()
  #wakeups = new Wakeups()
  #closed: Promise<void> | null = null
  #stats: engine.GroupCommitStats = { commits: 0, ops: 0, largestBatch: 0, failedCommits: 0 }

  // Reads take any connection of the pool, one statement at a time.
  #reads: Q
  #batch: PgGroupCommit
  readonly listener: WakeListener
  #locks: Locks

  constructor (database: PgDatabase, listener: WakeListener) {
    this.#database = database
    this.listener = listener
    this.#locks = new Locks(database.url)
    this.#reads = drizzle(database.pool)
    this.#batch = new PgGroupCommit(database.pool)
  }

  // Another instance committed rows to claim for `targets` (null: unknown,
  // after the listener reconnected, or a list too long to send). Committed
  // already, so a claim numbered from now on sees them.
  woken (targets: readonly string[] | null): void {
    if (this.#closed !== null) return
    if (targets !== null) {
      this.#wakeups.notify(targets, this.sequence())
      return
    }
    // Retried a little: right after a database restart the pool may first
    // hand out a connection the restart broke.
    pRetry(() => this.#read((q) => reads.pendingTargets(q)), { retries: 3, minTimeout: 100 })
      .then((all) => { this.#wakeups.notify(all, this.sequence()) })
      // The database is away again: the next reconnect wakes them.
      .catch(() => {})
  }

  tryExclusive<T> (name: string, fn: () => Promise<T>): Promise<engine.Exclusive<T>> {
    if (this.#closed !== null) return Promise.reject(new Error('storage is closed'))
    return this.#track(this.#locks.tryExclusive(name, fn))
  }

  #track<T> (op: Promise<T>): Promise<T> {
    this.#inflight.add(op)
    const done = (): void => { this.#inflight.delete(op) }
    op.then(done, done)
    return op
  }

  // An ordered write, numbered, one transaction. Returns its number too.
  // `waits`: it starts only once every write numbered below it has settled
  // (a claim); it is then not itself waited for by later claims.
  #write<T> (durability: Durability, fn: (q: Q, now: number) => Promise<T>, waits = false): { n: number; result: Promise<T> } {
    return this.#ordered(() => this.#commit(durability, fn), waits)
  }

  // As #write, for whatever runs the transaction (`start`).
  #ordered<T> (start: () => Promise<T>, waits: boolean): { n: number; result: Promise<T> } {
    const n = this.#next++
    if (this.#closed !== null) return { n, result: Promise.reject(new Error('storage is closed')) }
    if (waits) return { n, result: this.#track(Promise.allSettled([...this.#writes.values()]).then(start)) }
    const result = this.#track(start())
    this.#writes.set(n, result)
    const done = (): void => { this.#writes.delete(n) }
    result.then(done, done)
    return { n, result }
  }

  async #commit<T> (durability: Durability, fn: (q: Q, now: number) => Promise<T>): Promise<T> {
    try {
      const value = await inTransaction(this.#database.pool, durability, (q) => fn(q, Date.now()))
      this.#stats.commits++
      this.#stats.ops++
      this.#stats.largestBatch = 1
      return value
    } catch (err) {
      this.#stats.failedCommits++
      throw driverError(err)
    }
  }

  #read<T> (fn: (q: Q) => Promise<T>): Promise<T> {
    if (this.#closed !== null) return Promise.reject(new Error('storage is closed'))
    return this.#track(fn(this.#reads).catch((err: unknown) => { throw driverError(err) }))
  }

  sequence (): number {
    return this.#next
  }

  onEnqueued (fn: (targets: readonly string[], seenFrom: number) => void): () => void {
    return this.#wakeups.on(fn)
  }

  async enqueue (n: engine.NewNotification, targets: readonly string[], leases: engine.Leases): Promise<engine.EnqueueResult> {
    // Durable, in the group commit: shares a transaction with the enqueues
    // that arrive while others commit.
    const { n: seq, result } = this.#ordered(() => this.#batch.run(async (q, now, ids) => {
      const r = await writes.enqueue(q, n, targets, now, leases, ids)
      // The other instances' workers for the targets left to claim.
      await notifyTargets(q, this.listener.instance, Wakeups.toClaim(r))
      return r
    }).catch((err: unknown) => { throw driverError(err) }), false)
    const r = await result
    // A claim numbered above this write sees its rows.
    this.#wakeups.enqueued(r, seq + 1)
    return r
  }

  claim (target: string, limit: number, leaseMs: number): Promise<engine.ClaimedDelivery[]> {
    return this.#write('relaxed', (q, now) => writes.claimDue(q, target, limit, now, now + leaseMs), true).result
  }

  complete (a: engine.AttemptRecord): Promise<boolean> { return this.#write('relaxed', (q, now) => writes.settle(q, a, 'complete', now)).result }
  scheduleRetry (a: engine.AttemptRecord, at: number): Promise<boolean> { return this.#write('relaxed', (q, now) => writes.settle(q, a, 'scheduleRetry', now, at)).result }
  markDead (a: engine.AttemptRecord): Promise<boolean> { return this.#write('relaxed', (q, now) => writes.settle(q, a, 'markDead', now)).result }
  // A delivery given back (this instance stopping, a claim it could not
  // send) is due at once: another instance may take it now.
  releaseAttempt (a: engine.AttemptRecord): Promise<boolean> { return this.#write('relaxed', (q, now) => this.#announce(q, a.deliveryId, writes.settle(q, a, 'releaseAttempt', now))).result }
  release (deliveryId: number, fence: number): Promise<boolean> { return this.#write('relaxed', (q, now) => this.#announce(q, deliveryId, writes.release(q, deliveryId, fence, now))).result }
  expire (target: string, arrivedBefore: number): Promise<number> { return this.#write('relaxed', (q, now) => writes.expireDue(q, target, arrivedBefore, now)).result }
  reclaimLeases (): Promise<number> { return this.#write('durable', (q, now) => writes.reclaimLeases(q, now)).result }
  probe (): Promise<void> { return this.#write('durable', (q, now) => writes.touchHeartbeat(q, now)).result }
  prune (cutoff: number, limit: number): Promise<number> { return this.#write('durable', (q) => writes.pruneDelivered(q, cutoff, limit)).result }
  // Relaxed: a rewrite a crash undoes leaves the row as it was, readable.
  compactBodies (cursor: engine.CompactionCursor, limit: number): Promise<engine.CompactionBatch> { return this.#write('relaxed', (q, now) => writes.compactBodies(q, cursor, limit, now)).result }
  quarantine (row: engine.NewQuarantined, caps: engine.QuarantineCaps): Promise<{ id: number; dropped: number }> { return this.#write('durable', (q) => writes.quarantineRefused(q, row, caps)).result }
  markReleased (id: number, notificationId: string): Promise<boolean> { return this.#write('durable', (q, now) => writes.markReleased(q, id, notificationId, now)).result }
  insertRun (row: engine.NewHistoryRun): Promise<number> { return this.#write('durable', (q) => writes.insertRun(q, row)).result }
  updateRun (id: number, progress: Partial<engine.RunProgress>): Promise<boolean> { return this.#write('durable', (q, now) => writes.updateRun(q, id, progress, now)).result }
  openAlert (edge: engine.AlertEdge, at: number): Promise<number | null> { return this.#write('durable', (q) => alerts.openAlert(q, edge, at)).result }
  closeAlert (event: AlertEvent, subject: string, tell: engine.AlertEdge | null, at: number): Promise<boolean> { return this.#write('durable', (q) => alerts.closeAlert(q, event, subject, tell, at)).result }
  queueAlert (edge: engine.AlertEdge, at: number): Promise<number[]> { return this.#write('durable', (q) => alerts.queueAlert(q, edge, at)).result }
  claimAlerts (limit: number, leaseMs: number): Promise<engine.AlertMessage[]> { return this.#write('relaxed', (q, now) => alerts.claimAlerts(q, limit, now, now + leaseMs)).result }
  settleAlert (id: number, attempts: number, outcome: engine.AlertOutcome): Promise<boolean> { return this.#write('relaxed', (q, now) => alerts.settleAlert(q, id, attempts, outcome, now)).result }
  pruneAlerts (cutoff: number): Promise<number> { return this.#write('durable', (q) => alerts.pruneAlerts(q, cutoff)).result }

  async replay (notificationId: string, targets?: readonly string[]): Promise<string[]> {
    const { n, result } = this.#write('durable', async (q, now) => {
      const replayed = await writes.replay(q, notificationId, targets ?? null, now)
      await notifyTargets(q, this.listener.instance, replayed)
      return replayed
    })
    const replayed = await result
    this.#wakeups.notify(replayed, n + 1)
    return replayed
  }

  async #announce (q: Q, deliveryId: number, done: Promise<boolean>): Promise<boolean> {
    const changed = await done
    if (changed) await notifyDeliveryTarget(q, this.listener.instance, deliveryId)
    return changed
  }

  findQuarantined (id: number): Promise<engine.Readable<engine.QuarantineRow> | null> { return this.#read((q) => reads.findQuarantined(q, id)) }
  nextDueAt (target: string): Promise<number | null> { return this.#read((q) => reads.nextDueAt(q, target)) }
  listNotifications (filter: engine.NotificationFilter, limit: number, cursor: string | null): ReturnType<engine.Storage['listNotifications']> { return this.#read((q) => reads.listNotifications(q, filter, limit, cursor)) }
  getNotification (id: string): Promise<engine.NotificationWithHistory | null> { return this.#read((q) => reads.getNotification(q, id)) }
  targetHealth (target: string): Promise<engine.TargetHealth> { return this.#read((q) => reads.targetHealth(q, target)) }
  matchingIds (filter: engine.NotificationFilter, max: number): Promise<string[]> { return this.#read((q) => reads.matchingIds(q, filter, max)) }
  overview (now: number): Promise<engine.Overview> { return this.#read((q) => reads.overview(q, now)) }
  hourlyCounts (now: number, hours?: number): Promise<Array<{ hour: number; n: number }>> { return this.#read((q) => reads.hourlyCounts(q, now, hours)) }
  attentionCounts (): Promise<{ dead: number; quarantined: number }> { return this.#read((q) => reads.attentionCounts(q)) }
  listQuarantine (limit: number, beforeId: number | null): Promise<engine.QuarantineSummary[]> { return this.#read((q) => reads.listQuarantine(q, limit, beforeId)) }
  quarantineSize (): Promise<{ items: number; bytes: number }> { return this.#read((q) => reads.quarantineSize(q)) }
  gauges (): Promise<engine.Gauges> { return this.#read((q) => reads.gauges(q)) }
  lastReceivedAt (bundleId: string, environment: string): Promise<number | null> { return this.#read((q) => reads.lastReceivedAt(q, bundleId, environment)) }
  findTestNotification (notificationUuid: string | null, environment: string, since: number): ReturnType<engine.Storage['findTestNotification']> { return this.#read((q) => reads.findTestNotification(q, notificationUuid, environment, since)) }
  unfinishedRun (runKey: string): Promise<engine.HistoryRun | null> { return this.#read((q) => reads.unfinishedRun(q, runKey)) }
  lastCaughtUpTo (bundleId: string, environment: string): Promise<number | null> { return this.#read((q) => reads.lastCaughtUpTo(q, bundleId, environment)) }
  lastCatchUps (): Promise<engine.HistoryRun[]> { return this.#read((q) => reads.lastCatchUps(q)) }
  sizeBytes (): Promise<number> { return this.#read((q) => reads.sizeBytes(q)) }
  alertEpisodes (): Promise<engine.AlertEpisode[]> { return this.#read((q) => alerts.alertEpisodesLatest(q)) }
  alertHistory (limit: number): Promise<engine.AlertMessage[]> { return this.#read((q) => alerts.alertHistory(q, limit)) }
  deadSince (target: string, since: number): Promise<number> { return this.#read((q) => alerts.deadSince(q, target, since)) }
  quarantinedSince (since: number): Promise<number> { return this.#read((q) => alerts.quarantinedSince(q, since)) }
  lastPostedAt (environment: string): Promise<number | null> { return this.#read((q) => alerts.lastPostedAt(q, environment)) }

  pendingMigrations (): Promise<number> {
    return this.#read(async () => {
      const journal = JSON.parse(readFileSync(join(pgMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
      const { rows } = await this.#database.pool.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
      return journal.entries.length - Number(rows[0]!.n)
    })
  }

  // Every transaction: the group commit's and the others'.
  async stats (): Promise<engine.GroupCommitStats> {
    const b = this.#batch.stats()
    const o = this.#stats
    return { commits: o.commits + b.commits, ops: o.ops + b.ops, largestBatch: Math.max(o.largestBatch, b.largestBatch), failedCommits: o.failedCommits + b.failedCommits }
  }

  // Waits for every op asked for, then ends the pool's connections. Safe to call twice.
  close (): Promise<void> {
    this.#closed ??= (async () => {
      await this.listener.close()
      await Promise.allSettled([...this.#inflight])
      await this.#locks.close()
      await this.#database.close()
    })()
    return this.#closed
  }
}
