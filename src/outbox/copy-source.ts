// The SQLite side of `storehook copy` (src/ops/copy.ts): reads the file of
// DATABASE_PATH in id order, batch by batch, from one read snapshot, so the
// rows copied are one consistent state of the file even if a writer were to
// commit meanwhile (the command then says so: see changedSince).
import { and, asc, count, gt, lte, sql } from 'drizzle-orm'
import { openMigrated, type Database_ } from '../db/client.ts'
import * as schema from '../db/schema.ts'
import { DELIVERY_STATUSES } from '../db/vocabulary.ts'
import { copiedForm, COPY_TABLES, copyTablesOf, type CopyCounts, type CopyRow, type CopyTable } from './copy-tables.ts'

const TABLES = copyTablesOf<unknown>(schema)

// drizzle types a query by its one table; the copy runs the same query over
// six. Each has an `id` primary key, which is all the queries below use.
const tableOf = (name: CopyTable): typeof schema.attempts => TABLES[name] as typeof schema.attempts
const idOf = (id: number | string): number => id as number

const BATCH_BODY_BYTES = 32 * 1_048_576

export interface CopySource {
  counts: () => CopyCounts
  // Up to `limit` rows with an id above `after` (null: from the first), in id order, as the copy stores them.
  batch: (table: CopyTable, after: number | string | null, limit: number) => CopyRow[]
  // How many rows have an id up to `id`, and the row with that id, as the copy stores it.
  countUpTo: (table: CopyTable, id: number | string) => number
  rowAt: (table: CopyTable, id: number | string) => CopyRow | null
  // Ends the snapshot and reads the counts again: different counts mean
  // something wrote to the file during the copy.
  changedSince: (counts: CopyCounts) => boolean
  close: () => void
}

function countsOf (database: Database_): CopyCounts {
  const { db } = database
  const rows = Object.fromEntries(COPY_TABLES.map((name) => [name, db.select({ n: count() }).from(tableOf(name)).get()!.n])) as CopyCounts['rows']
  const deliveries = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as CopyCounts['deliveries']
  for (const r of db.all<{ status: keyof CopyCounts['deliveries'], n: number }>(sql`SELECT status, count(*) AS n FROM deliveries GROUP BY status`)) deliveries[r.status] = r.n
  // The rows themselves, not the trigger-kept totals: what PostgreSQL's totals must come to.
  const quarantine = db.get<{ items: number, bytes: number }>(sql`SELECT count(*) AS items, coalesce(sum(bytes), 0) AS bytes FROM quarantine`)!
  return { rows, deliveries, quarantine: { items: quarantine.items, bytes: quarantine.bytes } }
}

// Opens the file as every command does (brought up to date first, so its
// columns are the ones PostgreSQL's schema has) and starts the snapshot.
export function openCopySource (path: string, options: { batchBodyBytes?: number } = {}): CopySource {
  const budget = options.batchBodyBytes ?? BATCH_BODY_BYTES
  const { database } = openMigrated(path, { busyTimeoutMs: 30_000 })
  const { db } = database
  // Deferred: the snapshot is taken by the first read and lasts until COMMIT.
  db.run(sql`BEGIN`)
  let open = true
  const end = (): void => {
    if (open) db.run(sql`COMMIT`)
    open = false
  }
  return {
    counts: () => countsOf(database),
    batch (name, after, limit) {
      const t = tableOf(name)
      const from = after === null ? sql`1 = 1` : gt(t.id, idOf(after))
      // Bodies can be up to BODY_LIMIT_BYTES each: a batch of them is cut
      // at the budget (BATCH_BODY_BYTES; keeping at least one row), so that neither this
      // process nor one INSERT holds hundreds of megabytes. length() of a
      // blob is read from the record header, not the blob.
      let upTo = sql`1 = 1`
      if (name === 'notifications' || name === 'quarantine') {
        const sizes = db.all<{ id: number | string, bytes: number }>(sql`SELECT id, length(body) AS bytes FROM ${t} WHERE ${from} ORDER BY id LIMIT ${limit}`)
        let total = 0
        const last = sizes.findIndex((r) => (total += r.bytes) > budget)
        if (last >= 0) upTo = lte(t.id, idOf(sizes[Math.max(last - 1, 0)]!.id))
      }
      const rows = db.select().from(t).where(and(from, upTo)).orderBy(asc(t.id)).limit(limit).all() as unknown as CopyRow[]
      return rows.map((r) => copiedForm(name, r))
    },
    countUpTo (name, id) {
      const t = tableOf(name)
      return db.select({ n: count() }).from(t).where(lte(t.id, idOf(id))).get()!.n
    },
    rowAt (name, id) {
      const t = tableOf(name)
      const row = db.select().from(t).where(sql`${t.id} = ${id}`).get() as unknown as CopyRow | undefined
      return row === undefined ? null : copiedForm(name, row)
    },
    changedSince (counts) {
      end()
      return JSON.stringify(countsOf(database)) !== JSON.stringify(counts)
    },
    close () {
      try { end() } finally { database.close() }
    }
  }
}
