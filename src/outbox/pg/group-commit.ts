// Enqueues that arrive while others are committing share the next
// transaction: one BEGIN, one COMMIT and one WAL flush for many
// notifications, as the SQLite engine's writer does (../group-commit.ts).
// Measured with bench/pg.ts: per-notification transactions spent most of
// their time on round trips and flushes, not on the rows. Each caller's
// promise settles only after the COMMIT that covers its write, so a 200 is
// still never sent for a row that is not durable. No library batches
// transactions over node-postgres, hence this small class.
import { DrizzleQueryError } from 'drizzle-orm'
import type pg from 'pg'
import type { GroupCommitStats } from '../engine.ts'
import { ChainIds, type TxChainIds } from './bodies.ts'
import { inTransaction, type Q } from './connection.ts'

export type BatchedOp<T> = (q: Q, now: number, ids: TxChainIds) => Promise<T>

interface Pending {
  op: BatchedOp<unknown>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

// The server refused a statement (it carries a SQLSTATE): the batch may hold
// one bad op among good ones. Anything else (a refused or broken connection,
// a client timeout) would fail each op alone just the same.
function refusedByServer (err: unknown): boolean {
  const cause = (err instanceof DrizzleQueryError ? err.cause : err) as { code?: unknown } | undefined
  return typeof cause?.code === 'string' && /^[0-9A-Z]{5}$/.test(cause.code)
}

export class PgGroupCommit {
  #pool: pg.Pool
  #ids = new ChainIds()
  #queue: Pending[] = []
  #scheduled: NodeJS.Immediate | null = null
  #inflight = 0
  // Transactions at once: a few, so a batch forms behind each while the
  // others flush, and the pool keeps connections for claims and reads.
  #maxInflight: number
  #maxBatch: number
  #stats: GroupCommitStats = { commits: 0, ops: 0, largestBatch: 0, failedCommits: 0 }

  constructor (pool: pg.Pool, options: { maxInflight?: number; maxBatch?: number } = {}) {
    this.#pool = pool
    this.#maxInflight = options.maxInflight ?? 4
    this.#maxBatch = options.maxBatch ?? 200
  }

  run<T> (op: BatchedOp<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op: op as BatchedOp<unknown>, resolve: resolve as (v: unknown) => void, reject })
      // After the poll phase: every request parsed in this turn joins.
      this.#scheduled ??= setImmediate(() => { this.#scheduled = null; this.#pump() })
    })
  }

  #pump (): void {
    while (this.#inflight < this.#maxInflight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch)
      this.#inflight++
      void this.#commit(batch).finally(() => { this.#inflight--; this.#pump() })
    }
  }

  async #commit (batch: Pending[]): Promise<void> {
    let values: unknown[]
    try {
      values = await this.#transaction(batch.map((p) => p.op))
    } catch (err) {
      this.#stats.failedCommits++
      if (batch.length === 1 || !refusedByServer(err)) {
        for (const p of batch) p.reject(err)
        return
      }
      // One op the server refused rolled back the whole batch. Each runs
      // again in a transaction of its own, so it fails only its own caller.
      // Savepoints per op would do the same on every batch, at two more
      // round trips each; this costs only on the rare failing batch.
      await Promise.all(batch.map(async (p) => {
        try {
          p.resolve((await this.#transaction([p.op]))[0])
        } catch (e) {
          p.reject(e)
        }
      }))
      return
    }
    batch.forEach((p, i) => p.resolve(values[i]))
  }

  async #transaction (ops: Array<BatchedOp<unknown>>): Promise<unknown[]> {
    const ids = this.#ids.transaction()
    const values = await inTransaction(this.#pool, 'durable', async (q) => {
      const now = Date.now()
      const out: unknown[] = []
      // One connection runs one statement at a time: in turn.
      for (const op of ops) out.push(await op(q, now, ids))
      return out
    })
    ids.committed()
    this.#stats.commits++
    this.#stats.ops += ops.length
    if (ops.length > this.#stats.largestBatch) this.#stats.largestBatch = ops.length
    return values
  }

  stats (): GroupCommitStats {
    return { ...this.#stats }
  }
}
