// Every read of the PostgreSQL engine (the admin API, the dashboard, the CLI,
// /metrics, the catch-up), the same questions as queries.ts and runs.ts ask
// of SQLite, answered from what is committed now on any connection of the
// pool. PostgreSQL returns bigint and count() as strings: every number that
// leaves here is a JavaScript number (mapWith, or ::int where it fits).
import { and, asc, desc, eq, getTableColumns, gte, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm'
import { attempts, deliveries, historyRuns, notifications, quarantine, quarantineTotals } from '../../db/schema-pg.ts'
import { statusLiteral } from '../../db/schema.ts'
import { CATCH_UP_KINDS } from '../../db/vocabulary.ts'
import { targetHealthOf, v2DedupeKey, type DeliveryRow, type DeliveryState, type Gauges, type HistoryRun, type NotificationFilter, type NotificationSummary, type NotificationWithHistory, type Overview, type QuarantineRow, type QuarantineSummary, type Readable, type TargetHealth } from '../engine.ts'
import { notificationWhere, pageWithDeliveries } from '../listing.ts'
import { withBody } from './bodies.ts'
import type { Q } from './connection.ts'

const { body: _body, bodyEncoding: _bodyEncoding, bodyChainId: _bodyChainId, dedupeKey: _dedupeKey, ...summaryColumns } = getTableColumns(notifications)
const num = (expression: SQL): SQL<number> => expression.mapWith(Number)
const numOrNull = (expression: SQL): SQL<number | null> => expression.mapWith((v: unknown) => v === null ? null : Number(v))

const where = (f: NotificationFilter, cursor: string | null): SQL | undefined => notificationWhere(notifications, deliveries, f, cursor)
const newestFirst = desc(notifications.id)

export async function listNotifications (q: Q, filter: NotificationFilter, limit: number, cursor: string | null): Promise<{ items: Array<NotificationSummary & { deliveries: DeliveryRow[] }>; nextCursor: string | null }> {
  const rows = await q.select(summaryColumns).from(notifications).where(where(filter, cursor)).orderBy(newestFirst).limit(limit + 1)
  const ids = rows.slice(0, limit).map((r) => r.id)
  const found = ids.length === 0 ? [] : await q.select().from(deliveries).where(inArray(deliveries.notificationId, ids)).orderBy(deliveries.target)
  return pageWithDeliveries(rows, limit, found)
}

export async function getNotification (q: Q, id: string): Promise<NotificationWithHistory | null> {
  const [row] = await q.select().from(notifications).where(eq(notifications.id, id))
  if (row === undefined) return null
  const notification = await withBody(q, row)
  const ds = await q.select().from(deliveries).where(eq(deliveries.notificationId, id)).orderBy(deliveries.target)
  const history = ds.length === 0 ? [] : await q.select().from(attempts).where(inArray(attempts.deliveryId, ds.map((d) => d.id))).orderBy(asc(attempts.id))
  return { notification, deliveries: ds.map((d) => ({ ...d, history: history.filter((a) => a.deliveryId === d.id) })) }
}

export async function targetHealth (q: Q, target: string): Promise<TargetHealth> {
  const [counts] = await q.select({
    pending: sql<number>`count(*) FILTER (WHERE status = ${statusLiteral('pending')})::int`,
    dead: sql<number>`count(*) FILTER (WHERE status = ${statusLiteral('dead')})::int`,
    delivered: sql<number>`count(*) FILTER (WHERE status = ${statusLiteral('delivered')})::int`,
    oldest: numOrNull(sql`min(created_at) FILTER (WHERE status = ${statusLiteral('pending')})`),
    success: numOrNull(sql`max(delivered_at) FILTER (WHERE status = ${statusLiteral('delivered')})`)
  }).from(deliveries).where(eq(deliveries.target, target))
  // A success clears a delivery's last_error: this is the latest failure still standing.
  const [failure] = await q.select({ at: deliveries.updatedAt, error: deliveries.lastError }).from(deliveries)
    .where(and(eq(deliveries.target, target), sql`${deliveries.lastError} IS NOT NULL`)).orderBy(desc(deliveries.updatedAt)).limit(1)
  return targetHealthOf(counts, counts?.success, failure)
}

export async function matchingIds (q: Q, filter: NotificationFilter, max: number): Promise<string[]> {
  return (await q.select({ id: notifications.id }).from(notifications).where(where(filter, null)).orderBy(newestFirst).limit(max)).map((r) => r.id)
}

export async function overview (q: Q, now: number): Promise<Overview> {
  // The type of each environment's newest notification (SQLite's bare column beside max()).
  const lastReceived = await q.selectDistinctOn([notifications.environment], {
    environment: notifications.environment, at: notifications.receivedAt, type: notifications.notificationType
  }).from(notifications).orderBy(notifications.environment, desc(notifications.receivedAt))
  const last24h = await q.select({ environment: notifications.environment, verification: notifications.verification, n: sql<number>`count(*)::int` })
    .from(notifications).where(gte(notifications.receivedAt, now - 86_400_000))
    .groupBy(notifications.environment, notifications.verification).orderBy(notifications.environment, notifications.verification)
  return { lastReceived, last24h }
}

export async function hourlyCounts (q: Q, now: number, hours = 24): Promise<Array<{ hour: number; n: number }>> {
  const HOUR = 3_600_000
  const first = Math.floor(now / HOUR) - hours + 1
  const hour = num(sql`${notifications.receivedAt} / ${sql.raw(String(HOUR))}`)
  const rows = await q.select({ hour, n: sql<number>`count(*)::int` }).from(notifications)
    .where(gte(notifications.receivedAt, first * HOUR)).groupBy(sql`1`)
  const byHour = new Map(rows.map((r) => [r.hour, r.n]))
  return Array.from({ length: hours }, (_, i) => ({ hour: (first + i) * HOUR, n: byHour.get(first + i) ?? 0 }))
}

const deadCount = sql<number>`(SELECT count(*) FROM ${deliveries} WHERE status = ${statusLiteral('dead')})::int`
const unreleasedCount = sql<number>`(SELECT count(*) FROM ${quarantine} WHERE released_at IS NULL)::int`

export async function attentionCounts (q: Q): Promise<{ dead: number; quarantined: number }> {
  const { rows } = await q.execute<{ dead: number; quarantined: number }>(sql`SELECT ${deadCount} AS dead, ${unreleasedCount} AS quarantined`)
  return rows[0]!
}

export async function gauges (q: Q): Promise<Gauges> {
  const [pending, dead, lastReceived, quarantined] = await Promise.all([
    q.select({ target: deliveries.target, n: sql<number>`count(*)::int`, oldest: num(sql`min(${deliveries.createdAt})`) })
      .from(deliveries).where(eq(deliveries.status, 'pending')).groupBy(deliveries.target),
    q.select({ target: deliveries.target, n: sql<number>`count(*)::int` }).from(deliveries).where(eq(deliveries.status, 'dead')).groupBy(deliveries.target),
    q.select({ environment: notifications.environment, at: num(sql`max(${notifications.receivedAt})`) }).from(notifications).groupBy(notifications.environment),
    q.execute<{ n: number }>(sql`SELECT ${unreleasedCount} AS n`)
  ])
  return { pending, dead, lastReceived, quarantined: quarantined.rows[0]!.n }
}

export async function lastReceivedAt (q: Q, bundleId: string, environment: string): Promise<number | null> {
  const [r] = await q.select({ at: numOrNull(sql`max(${notifications.receivedAt})`) }).from(notifications)
    .where(and(eq(notifications.environment, environment), eq(notifications.bundleId, bundleId)))
  return r?.at ?? null
}

export async function findTestNotification (q: Q, notificationUuid: string | null, environment: string, since: number): Promise<{ id: string; deliveries: DeliveryState[] } | null> {
  // A V2 notification is stored under its notificationUUID (engine.ts dedupeKeyOf); the unique index finds it.
  const [row] = notificationUuid !== null
    ? await q.select({ id: notifications.id }).from(notifications).where(eq(notifications.dedupeKey, v2DedupeKey(notificationUuid)))
    : await q.select({ id: notifications.id }).from(notifications)
      .where(and(eq(notifications.notificationType, 'TEST'), eq(notifications.environment, environment), gte(notifications.receivedAt, since)))
      .orderBy(desc(notifications.receivedAt)).limit(1)
  if (row === undefined) return null
  const found = await q.select({
    name: deliveries.target, status: deliveries.status, attempts: deliveries.attempts, lastStatusCode: deliveries.lastStatusCode, lastError: deliveries.lastError
  }).from(deliveries).where(eq(deliveries.notificationId, row.id)).orderBy(deliveries.target)
  return { id: row.id, deliveries: found }
}

export async function nextDueAt (q: Q, target: string): Promise<number | null> {
  const [r] = await q.select({ at: numOrNull(sql`min(${deliveries.nextAttemptAt})`) }).from(deliveries)
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending')))
  return r?.at ?? null
}

// Every target with deliveries pending: whom to wake when wake-ups may have
// been missed (coordination.ts). Runs only then, so a scan of the pending
// index is affordable.
export async function pendingTargets (q: Q): Promise<string[]> {
  const rows = await q.selectDistinct({ target: deliveries.target }).from(deliveries).where(eq(deliveries.status, 'pending'))
  return rows.map((r) => r.target)
}

export async function findQuarantined (q: Q, id: number): Promise<Readable<QuarantineRow> | null> {
  const [row] = await q.select().from(quarantine).where(eq(quarantine.id, id))
  return row === undefined ? null : await withBody(q, row)
}

export async function listQuarantine (q: Q, limit: number, beforeId: number | null): Promise<QuarantineSummary[]> {
  const { body: _b, bodyEncoding: _e, bodyChainId: _c, ...columns } = getTableColumns(quarantine)
  return await q.select(columns).from(quarantine).where(beforeId === null ? undefined : lt(quarantine.id, beforeId)).orderBy(desc(quarantine.id)).limit(limit)
}

export async function quarantineSize (q: Q): Promise<{ items: number; bytes: number }> {
  const [totals] = await q.select({ items: quarantineTotals.items, bytes: quarantineTotals.bytes }).from(quarantineTotals).where(eq(quarantineTotals.id, 1))
  return totals ?? { items: 0, bytes: 0 }
}

// History runs (backfill, catch-up): runs.ts's questions.
export async function unfinishedRun (q: Q, runKey: string): Promise<HistoryRun | null> {
  const [r] = await q.select().from(historyRuns).where(and(eq(historyRuns.runKey, runKey), isNull(historyRuns.finishedAt))).orderBy(desc(historyRuns.id)).limit(1)
  return r ?? null
}

export async function lastCaughtUpTo (q: Q, bundleId: string, environment: string): Promise<number | null> {
  const [r] = await q.select({ at: numOrNull(sql`max(${historyRuns.endDate})`) }).from(historyRuns)
    .where(and(inArray(historyRuns.kind, [...CATCH_UP_KINDS]), eq(historyRuns.bundleId, bundleId), sql`${historyRuns.environment} = ${environment}`,
      sql`${historyRuns.finishedAt} IS NOT NULL`, isNull(historyRuns.lastError)))
  return r?.at ?? null
}

export async function lastCatchUps (q: Q): Promise<HistoryRun[]> {
  return await q.selectDistinctOn([historyRuns.bundleId, historyRuns.environment]).from(historyRuns)
    .where(inArray(historyRuns.kind, [...CATCH_UP_KINDS]))
    .orderBy(historyRuns.bundleId, historyRuns.environment, desc(historyRuns.id))
}

export async function sizeBytes (q: Q): Promise<number> {
  const { rows } = await q.execute<{ n: string }>(sql`SELECT pg_database_size(current_database()) AS n`)
  return Number(rows[0]!.n)
}
