// What the PostgreSQL engine's writes and reads run on (a drizzle handle on
// the pool, or on one connection inside a transaction), and the one place a
// transaction is opened, with its durability.
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import type pg from 'pg'

export type Q = NodePgDatabase

// As the SQLite engine's table (writer-ops.ts) says per op: 'durable' waits
// for the WAL flush before COMMIT returns (a notification answered 200, a
// quarantined payload, a replay, a run), 'relaxed' does not (delivery
// bookkeeping: a database crash can at worst undo a lease or an outcome, and
// the delivery is sent again). SET LOCAL lasts for the transaction only, so
// a pooled connection goes back as it came.
export type Durability = 'durable' | 'relaxed'

const BEGIN = { durable: 'BEGIN', relaxed: 'BEGIN; SET LOCAL synchronous_commit = off' }

// Written here rather than with drizzle's db.transaction: drizzle 0.45 runs
// BEGIN before its try, so a BEGIN that fails (the database just went away)
// never gives its connection back, and the pool shrinks by one each time
// until every op waits out the connect timeout and `close` never returns. A
// connection whose ROLLBACK failed is given back as broken, so the pool
// drops it rather than hand it to the next op.
export async function inTransaction<T> (pool: pg.Pool, durability: Durability, fn: (q: Q) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query(BEGIN[durability])
  } catch (err) {
    client.release(err as Error)
    throw err
  }
  try {
    const result = await fn(drizzle(client))
    await client.query('COMMIT')
    client.release()
    return result
  } catch (err) {
    const rollback = await client.query('ROLLBACK').then(() => undefined, (e: Error) => e)
    client.release(rollback)
    throw err
  }
}
