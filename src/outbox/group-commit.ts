// Batches every write that arrives in one turn of the event loop into one
// transaction, so one fsync covers many notifications. Each caller's promise
// settles only after the commit that covers its write: a 200 is never sent
// for a row that is not on disk. No library does this for better-sqlite3's
// synchronous API, hence this small class.
import type { Database_ } from '../db/client.ts'

interface Pending {
  op: () => unknown
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
  #maxBatch: number
  #stats: GroupCommitStats = { commits: 0, ops: 0, largestBatch: 0, failedCommits: 0 }

  constructor (database: Database_, options: { maxBatch?: number } = {}) {
    this.#database = database
    this.#maxBatch = options.maxBatch ?? 2000
  }

  run<T> (op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, resolve: resolve as (v: unknown) => void, reject })
      // setImmediate runs after the poll phase: every request parsed in this
      // turn joins the batch before it commits.
      this.#scheduled ??= setImmediate(() => { this.#scheduled = null; this.flush() })
    })
  }

  flush (): void {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch)
      let values: unknown[]
      try {
        values = this.#database.transaction(() => batch.map((p) => p.op()))
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
        const value = this.#database.transaction(p.op)
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
