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
      const results: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = []
      try {
        this.#database.transaction(() => {
          for (const p of batch) {
            try {
              results.push({ ok: true, value: this.#database.savepoint(p.op) })
            } catch (err) {
              results.push({ ok: false, err })
            }
          }
        })
      } catch (err) {
        this.#stats.failedCommits++
        for (const p of batch) p.reject(err)
        continue
      }
      this.#stats.commits++
      this.#stats.ops += batch.length
      if (batch.length > this.#stats.largestBatch) this.#stats.largestBatch = batch.length
      batch.forEach((p, i) => {
        const r = results[i]!
        if (r.ok) p.resolve(r.value)
        else p.reject(r.err)
      })
    }
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
