// The notification list's filter and paging, written once for both engines:
// drizzle's conditions take either dialect's columns, and the EXISTS on
// deliveries is plain SQL that both engines read the same.
import { and, eq, gte, lt, lte, sql, type Column, type SQL, type Table } from 'drizzle-orm'
import type { DeliveryRow, NotificationFilter } from './engine.ts'

// The notification columns a filter reads, from either engine's schema.
export interface FilterColumns {
  id: Column
  notificationType: Column
  subtype: Column
  environment: Column
  bundleId: Column
  originalTransactionId: Column
  verification: Column
  receivedAt: Column
}

export function notificationWhere (n: FilterColumns, deliveries: Table, f: NotificationFilter, cursor: string | null): SQL | undefined {
  const conditions: Array<SQL | undefined> = [
    f.type !== undefined ? eq(n.notificationType, f.type) : undefined,
    f.subtype !== undefined ? eq(n.subtype, f.subtype) : undefined,
    f.environment !== undefined ? eq(n.environment, f.environment) : undefined,
    f.bundleId !== undefined ? eq(n.bundleId, f.bundleId) : undefined,
    f.originalTransactionId !== undefined ? eq(n.originalTransactionId, f.originalTransactionId) : undefined,
    f.verification !== undefined ? eq(n.verification, f.verification) : undefined,
    f.since !== undefined ? gte(n.receivedAt, f.since) : undefined,
    f.until !== undefined ? lte(n.receivedAt, f.until) : undefined,
    // Ids are UUIDv7: ordered by arrival, so "older than the cursor" is "<".
    // Lowercase hex in fixed places sorts the same under any collation, so
    // PostgreSQL's primary key index serves it whatever the database's locale.
    cursor !== null ? lt(n.id, cursor) : undefined
  ]
  if (f.deliveryStatus !== undefined || f.target !== undefined) {
    conditions.push(sql`EXISTS (SELECT 1 FROM ${deliveries} d WHERE d.notification_id = ${n.id}
      ${f.deliveryStatus !== undefined ? sql`AND d.status = ${f.deliveryStatus}` : sql``}
      ${f.target !== undefined ? sql`AND d.target = ${f.target}` : sql``})`)
  }
  return and(...conditions)
}

// A page from `rows` (fetched limit + 1, newest first: the extra one tells
// whether there is a next page), each row with its deliveries; the cursor is
// the page's last id.
export function pageWithDeliveries<R extends { id: string }> (rows: R[], limit: number, found: DeliveryRow[]): { items: Array<R & { deliveries: DeliveryRow[] }>; nextCursor: string | null } {
  const page = rows.slice(0, limit)
  const byNotification = new Map<string, DeliveryRow[]>()
  for (const d of found) {
    const list = byNotification.get(d.notificationId) ?? []
    list.push(d)
    byNotification.set(d.notificationId, list)
  }
  return {
    items: page.map((r) => ({ ...r, deliveries: byNotification.get(r.id) ?? [] })),
    nextCursor: rows.length > limit ? page[page.length - 1]!.id : null
  }
}
