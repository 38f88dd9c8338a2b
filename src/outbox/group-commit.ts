// Batches every write that arrives in one turn of the event loop into one
// transaction, so one fsync covers many notifications. Each caller's promise
// settles only after the commit that covers its write: a 200 is never sent
// for a row that is not on disk. No library does this for better-sqlite3's
// synchronous API, hence this small class.
import type { Database_, Durability } from '../db/client.ts'

// Enough relaxed ops to commit at once without waiting for more.
const RELAXED_BATCH = 64

interface Pending {
  op: () => unknown
  durability: Durability
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

export interface GroupCommitStats {
  commits: number
  ops: number
  largestBatch: number
  failedCommits: number
}

export class GroupCommit {
  #database: Database_
  #queue: Pending[] = []
  #scheduled: NodeJS.Immediate | null = null
  // Only relaxed ops queued: they wait this long for company.
  #relaxedTimer: NodeJS.Timeout | null = null
  #relaxedDelayMs: number
  #maxBatch: number
  #stats: GroupCommitStats = { commits: 0, ops: 0, largestBatch: 0, failedCommits: 0 }

  constructor (database: Database_, options: { maxBatch?: number; relaxedDelayMs?: number } = {}) {
    this.#database = database
    this.#maxBatch = options.maxBatch ?? 2000
    this.#relaxedDelayMs = options.relaxedDelayMs ?? 2
  }

  // A batch is committed durably when any op in it asks for that.
  run<T> (op: () => T, durability: Durability = 'durable'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, durability, resolve: resolve as (v: unknown) => void, reject })
      if (durability === 'durable' || this.#queue.length >= RELAXED_BATCH) {
        // setImmediate runs after the poll phase: every request parsed in this
        // turn joins the batch before it commits.
        this.#scheduled ??= setImmediate(() => { this.#scheduled = null; this.flush() })
      } else {
        // Delivery outcomes arrive one by one as targets answer; a commit of
        // its own for each cost more than the work in it (WAL frames for the
        // same few pages, file locks). Nobody waits on them but the worker's
        // bookkeeping, so they wait a moment and share one commit.
        this.#relaxedTimer ??= setTimeout(() => { this.#relaxedTimer = null; this.flush() }, this.#relaxedDelayMs)
      }
    })
  }

  flush (): void {
    if (this.#relaxedTimer !== null) {
      clearTimeout(this.#relaxedTimer)
      this.#relaxedTimer = null
    }
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch)
      let values: unknown[]
      try {
        const durability = batch.some((p) => p.durability === 'durable') ? 'durable' : 'relaxed'
        values = this.#database.transaction(() => batch.map((p) => p.op()), durability)
      } catch {
        // Something in the batch failed and the whole transaction rolled
        // back. Run each op in a transaction of its own, so that one bad op
        // (or a disk that filled up halfway) fails only its own callers.
        // Savepoints per op would do the same on every batch; this costs
        // only on the rare failing one.
        this.#stats.failedCommits++
        this.#one(batch)
        continue
      }
      this.#count(batch.length)
      batch.forEach((p, i) => p.resolve(values[i]))
    }
  }

  #one (batch: Pending[]): void {
    for (const p of batch) {
      try {
        const value = this.#database.transaction(p.op, p.durability)
        this.#count(1)
        p.resolve(value)
      } catch (err) {
        p.reject(err)
      }
    }
  }

  #count (ops: number): void {
    this.#stats.commits++
    this.#stats.ops += ops
    if (ops > this.#stats.largestBatch) this.#stats.largestBatch = ops
  }

  // Commits what is queued now; later calls to run() still work (shutdown
  // drains in-flight deliveries after the last ingest).
  close (): void {
    if (this.#scheduled !== null) {
      clearImmediate(this.#scheduled)
      this.#scheduled = null
    }
    this.flush()
  }

  stats (): GroupCommitStats {
    return { ...this.#stats }
  }
}
