// Read-only questions asked of the outbox (the admin API, the dashboard, the
// CLI, /metrics, the catch-up). They run on the main thread's connection: WAL
// lets them read while the writer writes.
import { desc, eq, getTableColumns, inArray, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { deliveries, notifications, statusLiteral } from '../db/schema.ts'
import { targetHealthOf, v2DedupeKey, type DeliveryRow, type DeliveryState, type Gauges, type NotificationFilter, type NotificationSummary, type NotificationWithHistory, type Overview, type TargetHealth } from './engine.ts'
import { withBody } from './bodies.ts'
import { notificationWhere, pageWithDeliveries } from './listing.ts'
import { listAttempts } from './store.ts'

// Every column but the body (large, and shown only in the detail, decoded),
// how it is stored, and the dedupe key (the notificationUUID again, or a
// hash): a new column is listed without a line here.
const { body: _body, bodyEncoding: _bodyEncoding, bodyChainId: _bodyChainId, dedupeKey: _dedupeKey, ...summaryColumns } = getTableColumns(notifications)

const where = (f: NotificationFilter, cursor: string | null): SQL | undefined => notificationWhere(notifications, deliveries, f, cursor)

// Newest first, `limit` a page; the cursor is the last id of the previous page.
export function listNotifications (db: Db, filter: NotificationFilter, limit: number, cursor: string | null): { items: Array<NotificationSummary & { deliveries: DeliveryRow[] }>; nextCursor: string | null } {
  const rows = db.select(summaryColumns).from(notifications).where(where(filter, cursor))
    .orderBy(desc(notifications.id)).limit(limit + 1).all()
  const ids = rows.slice(0, limit).map((r) => r.id)
  const found = ids.length === 0 ? [] : db.select().from(deliveries).where(inArray(deliveries.notificationId, ids)).orderBy(deliveries.target).all()
  return pageWithDeliveries(rows, limit, found)
}

export function getNotification (db: Db, id: string): NotificationWithHistory | null {
  const row = db.select().from(notifications).where(eq(notifications.id, id)).get()
  if (row === undefined) return null
  const notification = withBody(db, row)
  const ds = db.select().from(deliveries).where(eq(deliveries.notificationId, id)).orderBy(deliveries.target).all()
  return { notification, deliveries: ds.map((d) => ({ ...d, history: listAttempts(db, d.id) })) }
}

export function targetHealth (db: Db, target: string): TargetHealth {
  const counts = db.get<{ pending: number; dead: number; delivered: number; oldest: number | null }>(sql`
    SELECT sum(status = ${statusLiteral('pending')}) AS pending, sum(status = ${statusLiteral('dead')}) AS dead, sum(status = ${statusLiteral('delivered')}) AS delivered,
           min(CASE WHEN status = ${statusLiteral('pending')} THEN created_at END) AS oldest
      FROM ${deliveries} WHERE target = ${target}`)
  const success = db.get<{ at: number | null }>(sql`SELECT max(delivered_at) AS at FROM ${deliveries} WHERE target = ${target} AND status = ${statusLiteral('delivered')}`)
  // A success clears a delivery's last_error, so this is the latest failure
  // still standing (retrying or dead), without scanning the attempt history.
  const failure = db.get<{ at: number; error: string | null }>(sql`
    SELECT updated_at AS at, last_error AS error FROM ${deliveries}
     WHERE target = ${target} AND last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1`)
  return targetHealthOf(counts, success?.at, failure)
}

// Every notification id matching the filter, newest first, at most `max`:
// what a bulk replay works through.
export function matchingIds (db: Db, filter: NotificationFilter, max: number): string[] {
  return db.select({ id: notifications.id }).from(notifications).where(where(filter, null))
    .orderBy(desc(notifications.id)).limit(max).all().map((r) => r.id)
}

export function overview (db: Db, now: number): Overview {
  return {
    lastReceived: db.all(sql`
      SELECT environment, max(received_at) AS at, notification_type AS type FROM ${notifications} GROUP BY environment ORDER BY environment`),
    last24h: db.all(sql`
      SELECT environment, verification, count(*) AS n FROM ${notifications}
       WHERE received_at >= ${now - 86_400_000} GROUP BY environment, verification ORDER BY environment, verification`)
  }
}

// Notifications received per hour over the last `hours` (oldest first, empty
// hours included): the dashboard's "counts over time". Hours are UTC.
export function hourlyCounts (db: Db, now: number, hours = 24): Array<{ hour: number; n: number }> {
  const HOUR = 3_600_000
  const first = Math.floor(now / HOUR) - hours + 1
  const rows = db.all<{ hour: number; n: number }>(sql`
    SELECT received_at / ${sql.raw(String(HOUR))} AS hour, count(*) AS n FROM ${notifications}
     WHERE received_at >= ${first * HOUR} GROUP BY hour`)
  const byHour = new Map(rows.map((r) => [r.hour, r.n]))
  return Array.from({ length: hours }, (_, i) => ({ hour: (first + i) * HOUR, n: byHour.get(first + i) ?? 0 }))
}

// What the dashboard's navigation shows on every page: work waiting for a person.
export function attentionCounts (db: Db): { dead: number; quarantined: number } {
  return db.get<{ dead: number; quarantined: number }>(sql`
    SELECT (SELECT count(*) FROM ${deliveries} WHERE status = ${statusLiteral('dead')}) AS dead,
           (SELECT count(*) FROM quarantine WHERE released_at IS NULL) AS quarantined`)!
}

// The outbox gauges of /metrics: aggregates over the whole outbox.
export function gauges (db: Db): Gauges {
  return {
    pending: db.all(sql`SELECT target, count(*) AS n, min(created_at) AS oldest FROM deliveries WHERE status = ${statusLiteral('pending')} GROUP BY target`),
    dead: db.all(sql`SELECT target, count(*) AS n FROM deliveries WHERE status = ${statusLiteral('dead')} GROUP BY target`),
    lastReceived: db.all(sql`SELECT environment, max(received_at) AS at FROM notifications GROUP BY environment`),
    quarantined: db.get<{ n: number }>(sql`SELECT count(*) AS n FROM quarantine WHERE released_at IS NULL`)!.n
  }
}

export function lastReceivedAt (db: Db, bundleId: string, environment: string): number | null {
  return db.get<{ at: number | null }>(sql`SELECT max(received_at) AS at FROM notifications
    WHERE environment = ${environment} AND bundle_id = ${bundleId}`)?.at ?? null
}

export function findTestNotification (db: Db, notificationUuid: string | null, environment: string, since: number): { id: string; deliveries: DeliveryState[] } | null {
  // A V2 notification is stored under its notificationUUID (engine.ts dedupeKeyOf); the dedupe key's unique index finds it.
  const row = notificationUuid !== null
    ? db.get<{ id: string }>(sql`SELECT id FROM notifications WHERE dedupe_key = ${v2DedupeKey(notificationUuid)}`)
    : db.get<{ id: string }>(sql`SELECT id FROM notifications WHERE notification_type = 'TEST' AND environment = ${environment} AND received_at >= ${since} ORDER BY received_at DESC LIMIT 1`)
  if (row === undefined) return null
  const found = db.all<DeliveryState>(sql`SELECT target AS name, status, attempts, last_status_code AS lastStatusCode, last_error AS lastError
    FROM deliveries WHERE notification_id = ${row.id} ORDER BY target`)
  return { id: row.id, deliveries: found }
}
