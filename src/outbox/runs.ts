// The history_runs table: progress of backfills and catch-ups. Writes run in
// the outbox's writer thread (which owns every write); reads run on the read
// connection (the server's, the CLI's).
import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { historyRuns } from '../db/schema.ts'
import type { HistoryRun, NewHistoryRun, RunProgress } from './engine.ts'
import { CATCH_UP_KINDS } from '../db/vocabulary.ts'

export function insertRun (db: Db, row: NewHistoryRun): number {
  return db.insert(historyRuns).values(row).returning({ id: historyRuns.id }).get().id
}

export function updateRun (db: Db, id: number, progress: Partial<RunProgress>, now: number): boolean {
  return db.update(historyRuns).set({ ...progress, updatedAt: now }).where(eq(historyRuns.id, id)).run().changes === 1
}

// The newest unfinished run with these arguments: the one a new run resumes.
export function unfinishedRun (db: Db, runKey: string): HistoryRun | null {
  return db.select().from(historyRuns)
    .where(and(eq(historyRuns.runKey, runKey), isNull(historyRuns.finishedAt)))
    .orderBy(desc(historyRuns.id)).limit(1).get() ?? null
}

// The end of the last catch-up that finished without error, per app and environment.
export function lastCaughtUpTo (db: Db, bundleId: string, environment: string): number | null {
  const r = db.get<{ at: number | null }>(sql`SELECT max(end_date) AS at FROM history_runs
    WHERE kind IN ${CATCH_UP_KINDS} AND bundle_id = ${bundleId} AND environment = ${environment} AND finished_at IS NOT NULL AND last_error IS NULL`)
  return r?.at ?? null
}

// The last catch-up run per app and environment (finished or not).
export function lastCatchUps (db: Db): HistoryRun[] {
  return db.all<HistoryRun>(sql`SELECT id, kind, run_key AS runKey, bundle_id AS bundleId, environment, start_date AS startDate,
      end_date AS endDate, only_failures AS onlyFailures, pagination_token AS paginationToken, pages, seen, added, already, refused,
      started_at AS startedAt, updated_at AS updatedAt, finished_at AS finishedAt, last_error AS lastError
    FROM history_runs WHERE id IN (SELECT max(id) FROM history_runs WHERE kind IN ${CATCH_UP_KINDS} GROUP BY bundle_id, environment)
    ORDER BY bundle_id, environment`).map((r) => ({ ...r, onlyFailures: Boolean(r.onlyFailures) }))
}
