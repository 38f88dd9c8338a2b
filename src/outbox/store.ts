// Every SQL operation on the outbox, one synchronous function per verb. They
// run inside the transaction that group-commit.ts opens; none of them commits
// on its own, and none of them knows about HTTP.
import { and, asc, eq, inArray, isNotNull, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { attempts, deliveries, heartbeat, notifications } from '../db/schema.ts'

export type NotificationRow = typeof notifications.$inferSelect
export type NewNotification = typeof notifications.$inferInsert
export type DeliveryRow = typeof deliveries.$inferSelect
export type AttemptRow = typeof attempts.$inferSelect

export interface EnqueueResult {
  id: string
  duplicate: boolean
  // Targets that got a new delivery row: their workers are woken after the commit.
  targets: string[]
}

export interface ClaimedDelivery {
  deliveryId: number
  notificationId: string
  target: string
  attempt: number
  fence: number
  retrySince: number
  body: Buffer
}

export interface AttemptRecord {
  deliveryId: number
  fence: number
  attempt: number
  startedAt: number
  durationMs: number
  statusCode: number | null
  error: string | null
  responseExcerpt: string | null
}

export function enqueue (db: Db, n: NewNotification, targets: readonly string[], now: number): EnqueueResult {
  const inserted = db.insert(notifications).values(n)
    .onConflictDoNothing({ target: notifications.dedupeKey })
    .returning({ id: notifications.id })
    .all()
  if (inserted.length === 0) {
    const existing = db.select({ id: notifications.id }).from(notifications)
      .where(eq(notifications.dedupeKey, n.dedupeKey)).get()
    // The conflict proves the row exists in this same transaction.
    return { id: existing!.id, duplicate: true, targets: [] }
  }
  if (targets.length > 0) {
    db.insert(deliveries).values(targets.map((target) => ({
      notificationId: n.id,
      target,
      status: 'pending',
      nextAttemptAt: now,
      retrySince: now,
      createdAt: now,
      updatedAt: now
    }))).run()
  }
  return { id: n.id, duplicate: false, targets: [...targets] }
}

// Claims up to `limit` due deliveries of one target. The lease is written as
// next_attempt_at, so a lease that expires (the process died mid-attempt)
// makes the row due again with no reaper; the fence is bumped so the old
// holder's late result is ignored.
export function claimDue (db: Db, target: string, limit: number, now: number, leaseUntil: number): ClaimedDelivery[] {
  const rows = db.all<{ id: number; notification_id: string; attempts: number; fence: number; retry_since: number }>(sql`
    UPDATE deliveries
       SET attempts = attempts + 1, fence = fence + 1, lease_until = ${leaseUntil},
           next_attempt_at = ${leaseUntil}, updated_at = ${now}
     WHERE id IN (SELECT id FROM deliveries
                   WHERE target = ${target} AND status = 'pending' AND next_attempt_at <= ${now}
                   ORDER BY next_attempt_at, id LIMIT ${limit})
 RETURNING id, notification_id, attempts, fence, retry_since`)
  if (rows.length === 0) return []
  const bodies = new Map(db.select({ id: notifications.id, body: notifications.body }).from(notifications)
    .where(inArray(notifications.id, rows.map((r) => r.notification_id))).all().map((r) => [r.id, r.body]))
  return rows
    .sort((a, b) => a.id - b.id)
    .map((r) => ({
      deliveryId: r.id,
      notificationId: r.notification_id,
      target,
      attempt: r.attempts,
      fence: r.fence,
      retrySince: r.retry_since,
      body: bodies.get(r.notification_id)!
    }))
}

function insertAttempt (db: Db, a: AttemptRecord): void {
  db.insert(attempts).values({
    deliveryId: a.deliveryId,
    attempt: a.attempt,
    startedAt: a.startedAt,
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    error: a.error,
    responseExcerpt: a.responseExcerpt
  }).run()
}

// Every attempt is history and is kept, even a stale one; only the delivery's
// state is guarded by the fence. Returns false when the fence was stale.
function settle (db: Db, a: AttemptRecord, set: Partial<DeliveryRow>, now: number): boolean {
  insertAttempt(db, a)
  const res = db.update(deliveries)
    .set({ ...set, leaseUntil: null, updatedAt: now, lastStatusCode: a.statusCode, lastError: a.error })
    .where(and(eq(deliveries.id, a.deliveryId), eq(deliveries.fence, a.fence), eq(deliveries.status, 'pending')))
    .run()
  return res.changes === 1
}

export function complete (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, { status: 'delivered', deliveredAt: now }, now)
}

export function scheduleRetry (db: Db, a: AttemptRecord, nextAttemptAt: number, now: number): boolean {
  return settle(db, a, { nextAttemptAt }, now)
}

export function markDead (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, { status: 'dead' }, now)
}

// An attempt cut short by shutdown: kept in history, and the delivery is due
// again at once rather than after a backoff it did not earn.
export function releaseAttempt (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, { nextAttemptAt: now, fence: sql`${deliveries.fence} + 1` as unknown as number }, now)
}

// Gives a claimed delivery back untouched (shutdown): due at once, fence bumped.
export function release (db: Db, deliveryId: number, fence: number, now: number): boolean {
  const res = db.update(deliveries)
    .set({ nextAttemptAt: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now })
    .where(and(eq(deliveries.id, deliveryId), eq(deliveries.fence, fence), eq(deliveries.status, 'pending')))
    .run()
  return res.changes === 1
}

// At start, no attempt of this database is running anywhere (one process owns
// the file), so every lease still held belongs to a process that died.
export function reclaimLeases (db: Db, now: number): number {
  return db.update(deliveries)
    .set({ nextAttemptAt: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now })
    .where(and(eq(deliveries.status, 'pending'), isNotNull(deliveries.leaseUntil)))
    .run().changes
}

// Delivers a notification again: existing deliveries become pending with a
// fresh give-up clock; named targets that never had it get a new row.
export function replay (db: Db, notificationId: string, targets: readonly string[], now: number): string[] {
  const exists = db.select({ id: notifications.id }).from(notifications).where(eq(notifications.id, notificationId)).get()
  if (exists === undefined) return []
  for (const target of targets) {
    db.insert(deliveries).values({
      notificationId, target, status: 'pending', nextAttemptAt: now, retrySince: now, createdAt: now, updatedAt: now
    }).onConflictDoUpdate({
      target: [deliveries.notificationId, deliveries.target],
      set: { status: 'pending', nextAttemptAt: now, retrySince: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now }
    }).run()
  }
  return [...targets]
}

export function nextDueAt (db: Db, target: string): number | null {
  const row = db.select({ at: sql<number | null>`min(${deliveries.nextAttemptAt})` }).from(deliveries)
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending'))).get()
  return row?.at ?? null
}

export function touchHeartbeat (db: Db, now: number): void {
  db.insert(heartbeat).values({ id: 1, at: now })
    .onConflictDoUpdate({ target: heartbeat.id, set: { at: now } }).run()
}

export function findNotification (db: Db, id: string): NotificationRow | undefined {
  return db.select().from(notifications).where(eq(notifications.id, id)).get()
}

export function listDeliveries (db: Db, notificationId: string): DeliveryRow[] {
  return db.select().from(deliveries).where(eq(deliveries.notificationId, notificationId)).orderBy(asc(deliveries.target)).all()
}

export function listAttempts (db: Db, deliveryId: number): AttemptRow[] {
  return db.select().from(attempts).where(eq(attempts.deliveryId, deliveryId)).orderBy(asc(attempts.id)).all()
}

export function targetsOf (db: Db, notificationId: string): string[] {
  return db.select({ target: deliveries.target }).from(deliveries)
    .where(eq(deliveries.notificationId, notificationId)).all().map((r) => r.target)
}

export function countDue (db: Db, target: string, now: number): number {
  const row = db.select({ n: sql<number>`count(*)` }).from(deliveries)
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, now))).get()
  return row?.n ?? 0
}
