// What `storehook copy` moves from the SQLite file to PostgreSQL, shared by
// its two sides (copy-source.ts reads SQLite, pg/copy.ts writes PostgreSQL)
// and the command (src/ops/copy.ts). No SQL here.
import type { DeliveryStatus } from '../db/vocabulary.ts'

// In the order a foreign key needs them: a chain before the bodies that
// name it, a notification before its deliveries, a delivery before its
// attempts. heartbeat is not copied (each engine writes its own), and the
// quarantine's running totals are kept by PostgreSQL's triggers as the rows
// arrive.
export const COPY_TABLES = ['body_chains', 'notifications', 'deliveries', 'attempts', 'quarantine', 'history_runs'] as const
export type CopyTable = (typeof COPY_TABLES)[number]

// Each copied table of an engine's schema module (schema.ts, schema-pg.ts:
// the same export names), by its SQL name.
export function copyTablesOf<T> (s: { bodyChains: T, notifications: T, deliveries: T, attempts: T, quarantine: T, historyRuns: T }): Record<CopyTable, T> {
  return { body_chains: s.bodyChains, notifications: s.notifications, deliveries: s.deliveries, attempts: s.attempts, quarantine: s.quarantine, history_runs: s.historyRuns }
}

// A row as drizzle reads it (camelCase keys), the same shape on both
// engines: the two schemas declare the same columns (test/pg/schema-pg.test.ts).
// Ids are whole numbers, but a notification's is its UUIDv7 text.
export type CopyRow = Record<string, unknown> & { id: number | string }

// What the copy is checked by at the end, read the same way on both sides.
export interface CopyCounts {
  rows: Record<CopyTable, number>
  deliveries: Record<DeliveryStatus, number>
  quarantine: { items: number, bytes: number }
}

// The row as the copy stores it. A lease belongs to a process of the source
// machine, which is stopped (its attempt's outcome never reaches the new
// database): the delivery is taken back as SQLite's start-up does it
// (store.ts reclaimLeases), the lease cleared and the fence bumped, and it is
// due from when it was claimed (updated_at), not at the lease's end. Derived
// from the row alone, so a resumed copy computes the same row again.
export function copiedForm (table: CopyTable, row: CopyRow): CopyRow {
  if (table !== 'deliveries' || row.leaseUntil === null) return row
  return { ...row, leaseUntil: null, nextAttemptAt: row.updatedAt, fence: (row.fence as number) + 1 }
}
