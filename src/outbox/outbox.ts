// The outbox as the rest of the program sees it. Every write goes to the
// writer thread (writer-thread.ts), is group-committed there, and resolves
// only after it is durable. Listeners learn which targets have new work
// right after the commit, so workers need not poll.
import { Worker } from 'node:worker_threads'
import { ASSET_WRITER, BINARY, binaryAsset } from '../binary.ts'
import type { GroupCommitStats } from './group-commit.ts'
import type * as store from './store.ts'
import type * as runs from '../appstore/runs.ts'
import type { Request, Response, WriterData } from './writer-thread.ts'

export type { AttemptRecord, ClaimedDelivery, EnqueueResult, NewNotification } from './store.ts'

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

// The writer is a .ts file when run from source (tests, tsx) and .js when built.
const WRITER_URL = new URL(`./writer-thread${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)

export class Outbox {
  #data: WriterData
  #worker: Worker | null = null
  #nextId = 1
  #pending = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>()
  #outgoing: Request[] = []
  #sendSoon: NodeJS.Immediate | null = null
  #sendLater: NodeJS.Timeout | null = null
  #listeners = new Set<(targets: readonly string[], seen: number) => void>()
  #closed: Promise<void> | null = null
  #onCrash: (err: unknown) => void

  constructor (options: WriterData & { onCrash?: (err: unknown) => void }) {
    this.#data = { path: options.path, busyTimeoutMs: options.busyTimeoutMs }
    this.#onCrash = options.onCrash ?? (() => {})
  }

  // Started lazily, and again after a crash: the outbox recovers by itself.
  #writer (): Worker {
    if (this.#worker !== null) return this.#worker
    // The binary has no writer file on disk: it runs the writer's own bundle, carried as an asset.
    const worker = BINARY === null
      ? new Worker(WRITER_URL, { workerData: this.#data })
      : new Worker(binaryAsset(ASSET_WRITER).toString('utf8'), { eval: true, workerData: this.#data })
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

  #call<T> (op: string, ...args: unknown[]): Promise<T> {
    return this.#queue(op, args, false)
  }

  // Delivery outcomes: nobody waits on them but the worker's bookkeeping,
  // and the writer holds them up to 2 ms for a shared commit anyway.
  #callLater<T> (op: string, ...args: unknown[]): Promise<T> {
    return this.#queue(op, args, true)
  }

  #queue<T> (op: string, args: unknown[], later: boolean): Promise<T> {
    if (this.#closed !== null && op !== 'close') return Promise.reject(new StorageError('outbox is closed', undefined, 'StorageError'))
    return new Promise<T>((resolve, reject) => {
      const id = this.#nextId++
      this.#pending.set(id, { resolve, reject })
      this.#outgoing.push([id, op, args])
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
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  #notify (targets: readonly string[], seenFrom: number): void {
    if (targets.length === 0) return
    for (const fn of this.#listeners) fn(targets, seenFrom)
  }

  // Stores a notification and one delivery row per target; the rows of the
  // targets in `leases` are written already leased until the time given
  // (returned in `leased`). Listeners hear of the other targets' rows.
  async enqueue (n: store.NewNotification, targets: readonly string[], leases: store.Leases): Promise<store.EnqueueResult> {
    // The enqueue is the next op: a claim after it sees its rows.
    const seenFrom = this.sequence() + 1
    const result = await this.#call<store.EnqueueResult>('enqueue', n, targets, leases)
    // Only targets with rows still to claim need their worker woken.
    this.#notify(result.targets.filter((t) => !result.leased.some((l) => l.target === t)), seenFrom)
    return result
  }

  async claim (target: string, limit: number, leaseMs: number): Promise<store.ClaimedDelivery[]> {
    const claimed = await this.#call<store.ClaimedDelivery[]>('claim', target, limit, leaseMs)
    for (const c of claimed) c.body = Buffer.from(c.body.buffer, c.body.byteOffset, c.body.byteLength)
    return claimed
  }

  complete (a: store.AttemptRecord): Promise<boolean> { return this.#callLater('complete', a) }
  scheduleRetry (a: store.AttemptRecord, nextAttemptAt: number): Promise<boolean> { return this.#callLater('scheduleRetry', a, nextAttemptAt) }
  markDead (a: store.AttemptRecord): Promise<boolean> { return this.#callLater('markDead', a) }
  releaseAttempt (a: store.AttemptRecord): Promise<boolean> { return this.#callLater('releaseAttempt', a) }
  release (deliveryId: number, fence: number): Promise<boolean> { return this.#call('release', deliveryId, fence) }
  expire (target: string, arrivedBefore: number): Promise<number> { return this.#call('expire', target, arrivedBefore) }
  reclaimLeases (): Promise<number> { return this.#call('reclaimLeases') }
  probe (): Promise<void> { return this.#call('probe') }
  prune (cutoff: number, limit: number): Promise<number> { return this.#call('prune', cutoff, limit) }
  nextDueAt (target: string): Promise<number | null> { return this.#call('nextDueAt', target) }
  stats (): Promise<GroupCommitStats> { return this.#call('stats') }
  quarantine (row: store.NewQuarantined, caps: store.QuarantineCaps): Promise<{ id: number; dropped: number }> { return this.#call('quarantine', row, caps) }
  async findQuarantined (id: number): Promise<store.QuarantineRow | null> {
    const row = await this.#call<store.QuarantineRow | null>('findQuarantined', id)
    if (row !== null) row.body = Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength)
    return row
  }

  markReleased (id: number, notificationId: string): Promise<boolean> { return this.#call('markReleased', id, notificationId) }
  setMaxPageCount (pages: number | null): Promise<number> { return this.#call('setMaxPageCount', pages) }
  insertRun (row: runs.NewHistoryRun): Promise<number> { return this.#call('insertRun', row) }
  updateRun (id: number, progress: Partial<runs.RunProgress>): Promise<boolean> { return this.#call('updateRun', id, progress) }

  // Replays to `targets`, or to every target the notification already has.
  async replay (notificationId: string, targets?: readonly string[]): Promise<string[]> {
    const seenFrom = this.sequence() + 1
    const replayed = await this.#call<string[]>('replay', notificationId, targets ?? null)
    this.#notify(replayed, seenFrom)
    return replayed
  }

  // Commits what is queued, closes the writer's connection, ends the thread. Safe to call twice.
  close (): Promise<void> {
    this.#closed ??= (async () => {
      const worker = this.#worker
      if (worker === null) return
      const exited = new Promise((resolve) => worker.once('exit', resolve))
      await this.#call('close').catch(() => {})
      // The database is closed by now; under Node the thread has already ended by itself.
      await worker.terminate()
      await exited
    })()
    return this.#closed
  }
}
