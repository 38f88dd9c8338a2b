// The PostgreSQL side of `storehook copy` (src/ops/copy.ts): the target
// database brought up to date by the same migration, under the same lock, as
// an instance starting; then rows inserted with their own ids, a batch a
// transaction, and read back to check the copy.
import { count, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { holdLock, migratePg, openPg } from '../../db/pg-client.ts'
import * as schema from '../../db/schema-pg.ts'
import { DELIVERY_STATUSES } from '../../db/vocabulary.ts'
import { COPY_TABLES, copyTablesOf, type CopyCounts, type CopyRow, type CopyTable } from '../copy-tables.ts'
import { inTransaction } from './connection.ts'

const TABLES = copyTablesOf<unknown>(schema)

// As in ../copy-source.ts: one query over six tables, each with an `id` key.
const tableOf = (name: CopyTable): typeof schema.attempts => TABLES[name] as typeof schema.attempts

// A notification's id is text: "the highest" must mean what it means in
// SQLite, byte order, whatever collation the database was created with
// (en_US.UTF-8 orders text otherwise).
const highest = (name: CopyTable) => name === 'notifications' ? sql`max(id COLLATE "C")` : sql`max(id)`

export interface CopyTarget {
  // How many rows the table holds, and its highest id (null when empty).
  progress: (table: CopyTable) => Promise<{ count: number, maxId: number | string | null }>
  rowAt: (table: CopyTable, id: number | string) => Promise<CopyRow | null>
  // Inserts the rows with their ids in one durable transaction and returns
  // how many were new: a row that clashes with one already there (same id,
  // same dedupe key or chain digest) is left out, not an error.
  insert: (table: CopyTable, rows: CopyRow[]) => Promise<number>
  counts: () => Promise<CopyCounts>
  close: () => Promise<void>
}

// Held for the whole copy: two copies into one database at once would each
// resume from what the other had not yet committed, and clash.
export const COPY_LOCK = 'stcopy'

export async function openCopyTarget (url: string): Promise<CopyTarget> {
  await migratePg(url)
  const lock = await holdLock(url, COPY_LOCK)
  if (lock === null) throw new Error('another storehook copy into this database is running')
  const database = openPg(url, { max: 1 })
  const q = drizzle(database.pool)
  return {
    async progress (name) {
      const [r] = await q.select({ n: count(), max: highest(name) }).from(tableOf(name))
      const max = r!.max as string | number | null
      return { count: r!.n, maxId: max === null ? null : name === 'notifications' ? String(max) : Number(max) }
    },
    async rowAt (name, id) {
      const t = tableOf(name)
      const [row] = await q.select().from(t).where(sql`${t.id} = ${id}`)
      return (row as unknown as CopyRow | undefined) ?? null
    },
    insert (name, rows) {
      return inTransaction(database.pool, 'durable', async (tx) => {
        const t = tableOf(name)
        const added = await tx.insert(t).values(rows as unknown as Array<typeof t.$inferInsert>).onConflictDoNothing().returning({ id: t.id })
        // Rows inserted with their ids leave the identity's sequence where it
        // was: moved past them, so the first row an instance adds after the
        // switch does not take a copied row's id.
        if (name !== 'notifications') await tx.execute(sql`SELECT setval(pg_get_serial_sequence(${name}, 'id'), (SELECT max(id) FROM ${t}))`)
        return added.length
      })
    },
    async counts () {
      const rows = {} as CopyCounts['rows']
      for (const name of COPY_TABLES) rows[name] = (await q.select({ n: count() }).from(tableOf(name)))[0]!.n
      const deliveries = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as CopyCounts['deliveries']
      for (const r of await q.select({ status: schema.deliveries.status, n: count() }).from(schema.deliveries).groupBy(schema.deliveries.status)) deliveries[r.status] = r.n
      // The triggers' running totals, which the server's cap checks read.
      const [totals] = await q.select({ items: schema.quarantineTotals.items, bytes: schema.quarantineTotals.bytes }).from(schema.quarantineTotals)
      return { rows, deliveries, quarantine: { items: totals?.items ?? 0, bytes: totals?.bytes ?? 0 } }
    },
    close: async () => {
      try { await database.close() } finally { await lock.release() }
    }
  }
}
