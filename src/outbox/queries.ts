// Read-only questions an operator asks of the outbox (the admin API). They run
// on the main thread's connection: WAL lets them read while the writer writes.
import { and, desc, eq, getTableColumns, gte, inArray, lt, lte, sql, type SQL } from 'drizzle-orm'
import { decodeNotificationBody } from '../apple/payload.ts'
import type { Db } from '../db/client.ts'
import { deliveries, notifications, statusLiteral } from '../db/schema.ts'
import type { DeliveryStatus, VerificationStatus } from '../db/vocabulary.ts'
import { maskTopLevelPassword, SECRET_MASK } from './secret-mask.ts'
import { listAttempts, type AttemptRow, type DeliveryRow, type NotificationRow } from './store.ts'

export interface NotificationFilter {
  type?: string
  subtype?: string
  environment?: string
  bundleId?: string
  originalTransactionId?: string
  verification?: VerificationStatus
  deliveryStatus?: DeliveryStatus
  target?: string
  since?: number
  until?: number
}

export type NotificationSummary = Omit<NotificationRow, 'body' | 'dedupeKey'>

// Every column but the body (large, and shown only in the detail) and the
// dedupe key (the notificationUUID again, or a hash): a new column is listed
// without a line here.
const { body: _body, dedupeKey: _dedupeKey, ...summaryColumns } = getTableColumns(notifications)

function where (f: NotificationFilter, cursor: string | null): SQL | undefined {
  const conditions: Array<SQL | undefined> = [
    f.type !== undefined ? eq(notifications.notificationType, f.type) : undefined,
    f.subtype !== undefined ? eq(notifications.subtype, f.subtype) : undefined,
    f.environment !== undefined ? eq(notifications.environment, f.environment) : undefined,
    f.bundleId !== undefined ? eq(notifications.bundleId, f.bundleId) : undefined,
    f.originalTransactionId !== undefined ? eq(notifications.originalTransactionId, f.originalTransactionId) : undefined,
    f.verification !== undefined ? eq(notifications.verification, f.verification) : undefined,
    f.since !== undefined ? gte(notifications.receivedAt, f.since) : undefined,
    f.until !== undefined ? lte(notifications.receivedAt, f.until) : undefined,
    // Ids are UUIDv7: ordered by arrival, so "older than the cursor" is "<".
    cursor !== null ? lt(notifications.id, cursor) : undefined
  ]
  if (f.deliveryStatus !== undefined || f.target !== undefined) {
    conditions.push(sql`EXISTS (SELECT 1 FROM ${deliveries} d WHERE d.notification_id = ${notifications.id}
      ${f.deliveryStatus !== undefined ? sql`AND d.status = ${f.deliveryStatus}` : sql``}
      ${f.target !== undefined ? sql`AND d.target = ${f.target}` : sql``})`)
  }
  return and(...conditions)
}

// Newest first, `limit` a page; the cursor is the last id of the previous page.
export function listNotifications (db: Db, filter: NotificationFilter, limit: number, cursor: string | null): { items: Array<NotificationSummary & { deliveries: DeliveryRow[] }>; nextCursor: string | null } {
  const rows = db.select(summaryColumns).from(notifications).where(where(filter, cursor))
    .orderBy(desc(notifications.id)).limit(limit + 1).all()
  const page = rows.slice(0, limit)
  const byNotification = new Map<string, DeliveryRow[]>()
  if (page.length > 0) {
    for (const d of db.select().from(deliveries).where(inArray(deliveries.notificationId, page.map((r) => r.id))).orderBy(deliveries.target).all()) {
      const list = byNotification.get(d.notificationId) ?? []
      list.push(d)
      byNotification.set(d.notificationId, list)
    }
  }
  return {
    items: page.map((r) => ({ ...r, deliveries: byNotification.get(r.id) ?? [] })),
    nextCursor: rows.length > limit ? page[page.length - 1]!.id : null
  }
}

export function getNotification (db: Db, id: string): { notification: NotificationRow; deliveries: Array<DeliveryRow & { history: AttemptRow[] }> } | null {
  const notification = db.select().from(notifications).where(eq(notifications.id, id)).get()
  if (notification === undefined) return null
  const ds = db.select().from(deliveries).where(eq(deliveries.notificationId, id)).orderBy(deliveries.target).all()
  return { notification, deliveries: ds.map((d) => ({ ...d, history: listAttempts(db, d.id) })) }
}

export interface TargetHealth {
  pending: number
  dead: number
  delivered: number
  oldestPendingAt: number | null
  lastSuccessAt: number | null
  lastErrorAt: number | null
  lastError: string | null
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
  return {
    pending: counts?.pending ?? 0,
    dead: counts?.dead ?? 0,
    delivered: counts?.delivered ?? 0,
    oldestPendingAt: counts?.oldest ?? null,
    lastSuccessAt: success?.at ?? null,
    lastErrorAt: failure?.at ?? null,
    lastError: failure?.error ?? null
  }
}

// Every notification id matching the filter, newest first, at most `max`:
// what a bulk replay works through.
export function matchingIds (db: Db, filter: NotificationFilter, max: number): string[] {
  return db.select({ id: notifications.id }).from(notifications).where(where(filter, null))
    .orderBy(desc(notifications.id)).limit(max).all().map((r) => r.id)
}

export interface Overview {
  lastReceived: Array<{ environment: string | null; at: number; type: string }>
  last24h: Array<{ environment: string | null; verification: string; n: number }>
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

export interface NotificationDetail {
  notification: NotificationSummary
  // The decoded payload, or null when the stored body does not decode; then
  // payloadError says why. A V1 body's top-level password is masked in both.
  payload: unknown
  payloadError: string | null
  body: string
  deliveries: Array<DeliveryRow & { history: AttemptRow[] }>
}

// One notification as the admin API and the dashboard show it, whatever the
// row holds (it may predate today's checks, or have been written straight
// into the database). The payload is only ever what today's decoder accepts,
// so it nests at most MAX_JSON_DEPTH levels and serialises safely; anything
// else is shown as its raw text, which is one string.
export function notificationDetail (db: Db, id: string): NotificationDetail | null {
  const found = getNotification(db, id)
  if (found === null) return null
  const { body, dedupeKey, ...notification } = found.notification
  void dedupeKey
  let payload: unknown = null
  let payloadError: string | null = null
  try {
    const decoded = decodeNotificationBody(body)
    // A V1 body is the payload: its password is the shared secret. A V2
    // payload is Apple's signed JWS payload, which has no such field.
    payload = decoded.version === 1 && Object.hasOwn(decoded.payload, 'password')
      ? { ...decoded.payload, password: SECRET_MASK }
      : decoded.payload
  } catch (err) {
    // The decoder only throws AppError, whose message says what is wrong.
    payloadError = err instanceof Error ? err.message : 'The stored body does not decode.'
  }
  return { notification, payload, payloadError, body: maskTopLevelPassword(body), deliveries: found.deliveries }
}
