// The outbox as the rest of the program sees it. Every write goes to the
// writer thread (writer-thread.ts), is group-committed there, and resolves
// only after it is durable. Listeners learn which targets have new work
// right after the commit, so workers need not poll.
import { Worker } from 'node:worker_threads'
import { ASSET_WRITER, BINARY, binaryAsset } from '../binary.ts'
import { openMigrated, type Database_ } from '../db/client.ts'
import type * as engine from './engine.ts'
import { CLOSE, OPS, type ArgsOf, type OpName, type OrderedOpName, type Request, type Response, type ResultOf, type UnorderedOpName } from './writer-ops.ts'
import * as alerts from './alerts.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import * as queries from './queries.ts'
import * as runs from './runs.ts'
import * as store from './store.ts'
import { Wakeups } from './wakeups.ts'
import type { WriterData } from './writer-thread.ts'

export type { AttemptRecord, ClaimedDelivery, EnqueueResult, NewNotification } from './engine.ts'

export class StorageError extends Error {
  readonly code: string | undefined
  constructor (message: string, code: string | undefined, name: string) {
    super(message)
    this.name = name === 'SqliteError' ? 'SqliteError' : 'StorageError'
    this.code = code
  }
}

// How long delivery outcomes may wait for other messages to travel with.
const OUTCOME_DELAY_MS = 1

// The writer is a .ts file when run from source (tests, Deno) and .js when built.
const WRITER_URL = new URL(`./writer-thread${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)

// Tests run the sources under tap's TypeScript loader, and a worker inherits
// it: ts-node loads the compiler again in every writer thread, 1.5-2 s of CPU
// each, which was half of `npm test`. Node 20 cannot load TypeScript in a
// worker without such a loader (tsx's does not reach workers before Node 22),
// so the test helpers hand the outbox a bundle of this same writer
// (test/helpers/writer-bundle.ts), which starts in about 0.2 s with no loader
// (neither the flags nor tap's NODE_OPTIONS, which a worker also applies).
// Nothing in the program calls this.
let writerBundle: URL | null = null
export function runWriterFrom (bundle: URL): void {
  writerBundle = bundle
}

export interface OutboxOptions extends WriterData {
  onCrash?: (err: unknown) => void
  // The read connection's page cache (KiB).
  cacheKb?: number
}

// Opens the file, applies pending migrations (counted in `applied`), and
// returns the outbox on it; the writer thread starts with the first write.
export function openOutbox (options: OutboxOptions): { outbox: Outbox; applied: number } {
  const { database, applied } = openMigrated(options.path, { busyTimeoutMs: options.busyTimeoutMs, ...(options.cacheKb !== undefined ? { cacheKb: options.cacheKb } : {}) })
  return { outbox: new Outbox(options, database), applied }
}

// The SQLite engine: writes go to the writer thread, reads to `reader`, the
// main thread's own connection (WAL lets both work at once). It owns both
// and closes both.
export class Outbox implements engine.Storage {
  #data: WriterData
  #reader: Database_
  #worker: Worker | null = null
  #nextId = 1
  #pending = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>()
  #outgoing: Request[] = []
  #sendSoon: NodeJS.Immediate | null = null
  #sendLater: NodeJS.Timeout | null = null
  #wakeups = new Wakeups()
  #closed: Promise<void> | null = null
  #onCrash: (err: unknown) => void

  constructor (options: OutboxOptions, reader: Database_) {
    this.#data = { path: options.path, busyTimeoutMs: options.busyTimeoutMs }
    this.#reader = reader
    this.#onCrash = options.onCrash ?? (() => {})
  }

  // Started lazily, and again after a crash: the outbox recovers by itself.
  #writer (): Worker {
    if (this.#worker !== null) return this.#worker
    // The binary has no writer file on disk: it runs the writer's own bundle, carried as an asset.
    const worker = BINARY !== null
      ? new Worker(binaryAsset(ASSET_WRITER).toString('utf8'), { eval: true, workerData: this.#data })
      : writerBundle !== null
        ? new Worker(writerBundle, { workerData: this.#data, execArgv: [], env: { ...process.env, NODE_OPTIONS: '' } })
        : new Worker(WRITER_URL, { workerData: this.#data })
    worker.on('message', (responses: Response[]) => {
      for (const [id, ok, value] of responses) {
        const p = this.#pending.get(id)
        if (p === undefined) continue
        this.#pending.delete(id)
        if (ok) p.resolve(value)
        else p.reject(new StorageError(value.message, value.code, value.name))
      }
    })
    const lost = (err: unknown): void => {
      if (this.#worker !== worker) return
      this.#worker = null
      for (const p of this.#pending.values()) p.reject(err)
      this.#pending.clear()
      if (this.#closed === null) this.#onCrash(err)
    }
    worker.on('error', lost)
    worker.on('exit', (code) => lost(new StorageError(`outbox writer exited with code ${code}`, undefined, 'StorageError')))
    this.#worker = worker
    return worker
  }

  // An ordered op: it runs after every op asked for before it. Its entry in
  // OPS says how soon it travels.
  call<K extends OrderedOpName> (op: K, ...args: ArgsOf<K>): Promise<ResultOf<K>> {
    return this.#queue(op, args, OPS[op].batching === 'later')
  }

  // An unordered op: answered from what is committed, ahead of queued writes.
  read<K extends UnorderedOpName> (op: K, ...args: ArgsOf<K>): Promise<ResultOf<K>> {
    return this.#queue(op, args, false)
  }

  #queue<T> (op: OpName | typeof CLOSE, args: unknown[], later: boolean): Promise<T> {
    if (this.#closed !== null && op !== CLOSE) return Promise.reject(new StorageError('outbox is closed', undefined, 'StorageError'))
    return new Promise<T>((resolve, reject) => {
      const id = this.#nextId++
      this.#pending.set(id, { resolve, reject })
      const request: Request = [id, op, args]
      this.#outgoing.push(request)
      if (!later) this.#sendSoon ??= setImmediate(() => this.#send())
      else if (this.#sendSoon === null) this.#sendLater ??= setTimeout(() => this.#send(), OUTCOME_DELAY_MS)
    })
  }

  // Everything asked for in one turn of the event loop (the requests parsed
  // in one poll, the outcomes of the targets that answered) travels in one
  // message: per message, the thread hop cost more CPU than the write itself.
  // Outcomes alone wait a moment more, for company: a target answering one
  // request at a time would otherwise cost a message per delivery.
  #send (): void {
    if (this.#sendSoon !== null) clearImmediate(this.#sendSoon)
    if (this.#sendLater !== null) clearTimeout(this.#sendLater)
    this.#sendSoon = null
    this.#sendLater = null
    const batch = this.#outgoing
    this.#outgoing = []
    if (batch.length > 0) this.#writer().postMessage(batch)
  }

  // The writer runs ops in the order they were asked for, so an op's number
  // tells what it sees: a claim numbered n sees every row written by ops
  // numbered below n. The number the next op will get:
  sequence (): number {
    return this.#nextId
  }

  // Listeners get the targets with new rows to claim, and the op number from
  // which a claim sees them.
  onEnqueued (fn: (targets: readonly string[], seenFrom: number) => void): () => void {
    return this.#wakeups.on(fn)
  }

  // One process owns the file (and the CLI's runs are the operator's own
  // doing): there is no other instance to take turns with.
  async tryExclusive<T> (_name: string, fn: () => Promise<T>): Promise<engine.Exclusive<T>> {
    return { ran: true, value: await fn() }
  }

  async enqueue (n: engine.NewNotification, targets: readonly string[], leases: engine.Leases): Promise<engine.EnqueueResult> {
    // The enqueue is the next op: a claim after it sees its rows.
    const seenFrom = this.sequence() + 1
    const result = await this.call('enqueue', n, targets, leases)
    this.#wakeups.enqueued(result, seenFrom)
    return result
  }

  async claim (target: string, limit: number, leaseMs: number): Promise<engine.ClaimedDelivery[]> {
    const claimed = await this.call('claim', target, limit, leaseMs)
    for (const c of claimed) c.body = Buffer.from(c.body.buffer, c.body.byteOffset, c.body.byteLength)
    return claimed
  }

  complete (a: engine.AttemptRecord): Promise<boolean> { return this.call('complete', a) }
  scheduleRetry (a: engine.AttemptRecord, nextAttemptAt: number): Promise<boolean> { return this.call('scheduleRetry', a, nextAttemptAt) }
  markDead (a: engine.AttemptRecord): Promise<boolean> { return this.call('markDead', a) }
  releaseAttempt (a: engine.AttemptRecord): Promise<boolean> { return this.call('releaseAttempt', a) }
  release (deliveryId: number, fence: number): Promise<boolean> { return this.call('release', deliveryId, fence) }
  expire (target: string, arrivedBefore: number): Promise<number> { return this.call('expire', target, arrivedBefore) }
  reclaimLeases (): Promise<number> { return this.call('reclaimLeases') }
  probe (): Promise<void> { return this.call('probe') }
  prune (cutoff: number, limit: number): Promise<number> { return this.call('prune', cutoff, limit) }
  compactBodies (cursor: engine.CompactionCursor, limit: number): Promise<engine.CompactionBatch> { return this.call('compactBodies', cursor, limit) }
  quarantine (row: engine.NewQuarantined, caps: engine.QuarantineCaps): Promise<{ id: number; dropped: number }> { return this.call('quarantine', row, caps) }
  markReleased (id: number, notificationId: string): Promise<boolean> { return this.call('markReleased', id, notificationId) }
  insertRun (row: engine.NewHistoryRun): Promise<number> { return this.call('insertRun', row) }
  updateRun (id: number, progress: Partial<engine.RunProgress>): Promise<boolean> { return this.call('updateRun', id, progress) }
  openAlert (edge: engine.AlertEdge, at: number): Promise<number | null> { return this.call('openAlert', edge, at) }
  closeAlert (event: AlertEvent, subject: string, tell: engine.AlertEdge | null, at: number): Promise<boolean> { return this.call('closeAlert', event, subject, tell, at) }
  queueAlert (edge: engine.AlertEdge, at: number): Promise<number[]> { return this.call('queueAlert', edge, at) }
  claimAlerts (limit: number, leaseMs: number): Promise<engine.AlertMessage[]> { return this.call('claimAlerts', limit, leaseMs) }
  settleAlert (id: number, attempts: number, outcome: engine.AlertOutcome): Promise<boolean> { return this.call('settleAlert', id, attempts, outcome) }
  pruneAlerts (cutoff: number): Promise<number> { return this.call('pruneAlerts', cutoff) }

  async replay (notificationId: string, targets?: readonly string[]): Promise<string[]> {
    const seenFrom = this.sequence() + 1
    const replayed = await this.call('replay', notificationId, targets ?? null)
    this.#wakeups.notify(replayed, seenFrom)
    return replayed
  }

  async findQuarantined (id: number): Promise<engine.Readable<engine.QuarantineRow> | null> {
    const row = await this.read('findQuarantined', id)
    if (row?.body != null) row.body = Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength)
    return row
  }

  nextDueAt (target: string): Promise<number | null> { return this.read('nextDueAt', target) }
  stats (): Promise<engine.GroupCommitStats> { return this.read('stats') }
  // SQLite only, for fault drills and tests: cap the file as a full disk would.
  setMaxPageCount (pages: number | null): Promise<number> { return this.read('setMaxPageCount', pages) }

  // Reads on the main thread's connection.
  async listNotifications (filter: engine.NotificationFilter, limit: number, cursor: string | null): ReturnType<engine.Storage['listNotifications']> { return queries.listNotifications(this.#reader.db, filter, limit, cursor) }
  async getNotification (id: string): Promise<engine.NotificationWithHistory | null> { return queries.getNotification(this.#reader.db, id) }
  async targetHealth (target: string): Promise<engine.TargetHealth> { return queries.targetHealth(this.#reader.db, target) }
  async matchingIds (filter: engine.NotificationFilter, max: number): Promise<string[]> { return queries.matchingIds(this.#reader.db, filter, max) }
  async overview (now: number): Promise<engine.Overview> { return queries.overview(this.#reader.db, now) }
  async hourlyCounts (now: number, hours?: number): Promise<Array<{ hour: number; n: number }>> { return queries.hourlyCounts(this.#reader.db, now, hours) }
  async attentionCounts (): Promise<{ dead: number; quarantined: number }> { return queries.attentionCounts(this.#reader.db) }
  async listQuarantine (limit: number, beforeId: number | null): Promise<engine.QuarantineSummary[]> { return store.listQuarantine(this.#reader.db, limit, beforeId) }
  async quarantineSize (): Promise<{ items: number; bytes: number }> { return store.quarantineSize(this.#reader.db) }
  async gauges (): Promise<engine.Gauges> { return queries.gauges(this.#reader.db) }
  async lastReceivedAt (bundleId: string, environment: string): Promise<number | null> { return queries.lastReceivedAt(this.#reader.db, bundleId, environment) }
  async findTestNotification (notificationUuid: string | null, environment: string, since: number): ReturnType<engine.Storage['findTestNotification']> { return queries.findTestNotification(this.#reader.db, notificationUuid, environment, since) }
  async unfinishedRun (runKey: string): Promise<engine.HistoryRun | null> { return runs.unfinishedRun(this.#reader.db, runKey) }
  async lastCaughtUpTo (bundleId: string, environment: string): Promise<number | null> { return runs.lastCaughtUpTo(this.#reader.db, bundleId, environment) }
  async lastCatchUps (): Promise<engine.HistoryRun[]> { return runs.lastCatchUps(this.#reader.db) }
  async pendingMigrations (): Promise<number> { return this.#reader.pendingMigrations() }
  async sizeBytes (): Promise<number> { return this.#reader.fileSizeBytes() }
  async alertEpisodes (): Promise<engine.AlertEpisode[]> { return alerts.alertEpisodesLatest(this.#reader.db) }
  async alertHistory (limit: number): Promise<engine.AlertMessage[]> { return alerts.alertHistory(this.#reader.db, limit) }
  async deadSince (target: string, since: number): Promise<number> { return alerts.deadSince(this.#reader.db, target, since) }
  async quarantinedSince (since: number): Promise<number> { return alerts.quarantinedSince(this.#reader.db, since) }
  async lastPostedAt (environment: string): Promise<number | null> { return alerts.lastPostedAt(this.#reader.db, environment) }

  // Commits what is queued, closes the writer's connection, ends the thread,
  // closes the read connection. Safe to call twice.
  close (): Promise<void> {
    this.#closed ??= (async () => {
      const worker = this.#worker
      if (worker !== null) {
        const exited = new Promise((resolve) => worker.once('exit', resolve))
        await this.#queue(CLOSE, [], false).catch(() => {})
        // The database is closed by now; under Node the thread has already ended by itself.
        await worker.terminate()
        await exited
      }
      // Last, as the writer has checkpointed: the read connection.
      this.#reader.close()
    })()
    return this.#closed
  }
}
