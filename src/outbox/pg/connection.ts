// What the PostgreSQL engine's writes and reads run on: the pool's drizzle
// handle or one of its transactions (both are a PgDatabase), and the one
// place a transaction is opened with its durability.
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres'
import { sql } from 'drizzle-orm'
import type { PgDatabase } from 'drizzle-orm/pg-core'
import type { PgDb } from '../../db/pg-client.ts'
import type * as schema from '../../db/schema-pg.ts'

export type Q = PgDatabase<NodePgQueryResultHKT, typeof schema>

// As the SQLite engine's table (writer-ops.ts) says per op: 'durable' waits
// for the WAL flush before COMMIT returns (a notification answered 200, a
// quarantined payload, a replay, a run), 'relaxed' does not (delivery
// bookkeeping: a database crash can at worst undo a lease or an outcome, and
// the delivery is sent again). SET LOCAL lasts for the transaction only, so
// a pooled connection goes back as it came.
export type Durability = 'durable' | 'relaxed'

export function inTransaction<T> (db: PgDb, durability: Durability, fn: (q: Q) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    if (durability === 'relaxed') await tx.execute(sql`SET LOCAL synchronous_commit = off`)
    return await fn(tx)
  })
}
