// Every SQL operation on the outbox, one synchronous function per verb. They
// run inside the transaction that group-commit.ts opens; none of them commits
// on its own, and none of them knows about HTTP.
import { and, asc, eq, getTableColumns, isNotNull, lte, sql, type Placeholder } from 'drizzle-orm'
import { preparedFor, type Db } from '../db/client.ts'
import { DONE, type AttemptRecord, type AttemptRow, type ClaimedDelivery, type CompactionBatch, type CompactionCursor, type EnqueueResult, type LeasedDelivery, type Leases, type NewNotification, type NewQuarantined, type QuarantineCaps, type QuarantineRow, type QuarantineSummary, type Readable } from './engine.ts'
import { attempts, deliveries, heartbeat, notifications, quarantine, quarantineTotals, statusLiteral } from '../db/schema.ts'
import { BodyDecodeError, chainPolicyFor, loadBody, storeBody, withBody } from './bodies.ts'

export type { AttemptRecord, ClaimedDelivery, EnqueueResult, LeasedDelivery, Leases, NewNotification, NewQuarantined, QuarantineCaps, QuarantineRow, QuarantineSummary } from './engine.ts'

const p = sql.placeholder

// The notification row is written from the table's columns, each one a
// placeholder of its own name, so a new column needs no line here. A column
// the row leaves out is null: a placeholder must be given a value.
const notificationColumns = getTableColumns(notifications)
const notificationPlaceholders = Object.fromEntries(Object.keys(notificationColumns).map((k) => [k, p(k)])) as Record<keyof NewNotification, Placeholder>
const absentAsNull = Object.fromEntries(Object.entries(notificationColumns).filter(([, c]) => !c.notNull).map(([k]) => [k, null]))

// Drizzle builds and prepares a statement on every call unless told not to;
// on the hot path that cost more than SQLite itself. Each statement here is
// built once per database and reused.
function prepareStatements (db: Db) {
  return {
    insertNotification: db.insert(notifications).values(notificationPlaceholders).onConflictDoNothing({ target: notifications.dedupeKey }).returning({ id: notifications.id }).prepare(),
    idByDedupeKey: db.select({ id: notifications.id }).from(notifications).where(eq(notifications.dedupeKey, p('dedupeKey'))).prepare(),
    insertDelivery: db.insert(deliveries).values({
      notificationId: p('notificationId'), target: p('target'), status: 'pending', nextAttemptAt: p('now'),
      retrySince: p('now'), createdAt: p('now'), updatedAt: p('now')
    }).prepare(),
    // The row as a claim would leave it: first attempt, fence 1, leased.
    insertLeasedDelivery: db.insert(deliveries).values({
      notificationId: p('notificationId'), target: p('target'), status: 'pending', attempts: 1, fence: 1,
      leaseUntil: p('leaseUntil'), nextAttemptAt: p('leaseUntil'), retrySince: p('now'), createdAt: p('now'), updatedAt: p('now')
    }).returning({ id: deliveries.id }).prepare(),
    dueIds: db.select({ id: deliveries.id }).from(deliveries)
      .where(and(eq(deliveries.target, p('target')), eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, p('now'))))
      .orderBy(asc(deliveries.nextAttemptAt), asc(deliveries.id)).limit(p('limit')).prepare(),
    lease: db.update(deliveries).set({
      attempts: sql`${deliveries.attempts} + 1`, fence: sql`${deliveries.fence} + 1`,
      leaseUntil: sql`${p('leaseUntil')}`, nextAttemptAt: sql`${p('leaseUntil')}`, updatedAt: sql`${p('now')}`
    }).where(eq(deliveries.id, p('id'))).returning({
      id: deliveries.id, notificationId: deliveries.notificationId, attempts: deliveries.attempts, fence: deliveries.fence, retrySince: deliveries.retrySince
    }).prepare(),
    body: db.select({
      body: notifications.body, bodyEncoding: notifications.bodyEncoding, bodyChainId: notifications.bodyChainId,
      source: notifications.source, receivedAt: notifications.receivedAt, verification: notifications.verification, verificationError: notifications.verificationError
    }).from(notifications).where(eq(notifications.id, p('id'))).prepare(),
    // A delivery whose stored body cannot be read back is dead at once, with
    // the reason: retrying cannot make it readable, and left pending it would
    // fail every claim of its target.
    markUnreadable: db.update(deliveries).set({ status: 'dead', leaseUntil: null, updatedAt: sql`${p('now')}`, lastError: sql`${p('error')}` })
      .where(eq(deliveries.id, p('id'))).prepare(),
    insertAttempt: db.insert(attempts).values({
      deliveryId: p('deliveryId'), attempt: p('attempt'), startedAt: p('startedAt'), durationMs: p('durationMs'),
      statusCode: p('statusCode'), error: p('error'), responseExcerpt: p('responseExcerpt')
    }).prepare(),
    // The outcome of an attempt, one statement per verdict; the fence guard
    // makes a stale attempt's result a no-op.
    complete: settleStatement(db, { status: 'delivered', deliveredAt: sql`${p('now')}` }),
    scheduleRetry: settleStatement(db, { nextAttemptAt: sql`${p('at')}` }),
    markDead: settleStatement(db, { status: 'dead' }),
    releaseAttempt: settleStatement(db, { nextAttemptAt: sql`${p('now')}`, fence: sql`${deliveries.fence} + 1` }),
    // The claim counted an attempt that was never made: take it back.
    release: db.update(deliveries)
      .set({ attempts: sql`${deliveries.attempts} - 1`, nextAttemptAt: sql`${p('now')}`, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: sql`${p('now')}` })
      .where(and(eq(deliveries.id, p('id')), eq(deliveries.fence, p('fence')), eq(deliveries.status, 'pending'))).prepare(),
    nextDueAt: db.select({ at: sql<number | null>`min(${deliveries.nextAttemptAt})` }).from(deliveries)
      .where(and(eq(deliveries.target, p('target')), eq(deliveries.status, 'pending'))).prepare()
  }
}

function settleStatement (db: Db, set: Record<string, unknown>) {
  return db.update(deliveries)
    .set({ ...set, leaseUntil: null, updatedAt: sql`${p('now')}`, lastStatusCode: sql`${p('statusCode')}`, lastError: sql`${p('error')}` })
    .where(and(eq(deliveries.id, p('id')), eq(deliveries.fence, p('fence')), eq(deliveries.status, 'pending'))).prepare()
}

const statements = preparedFor(prepareStatements)

export function enqueue (db: Db, n: NewNotification, targets: readonly string[], now: number, leases: Leases = []): EnqueueResult {
  const st = statements(db)
  // Compressed before the dedupe check: a duplicate is rare (Apple's retry of
  // a notification it did not see answered), a lookup first would cost every row.
  const inserted = st.insertNotification.all({ ...absentAsNull, ...n, ...storeBody(db, n.body, chainPolicyFor(n.verification), now) })
  if (inserted.length === 0) {
    // The conflict proves the row exists in this same transaction.
    const existing = st.idByDedupeKey.get({ dedupeKey: n.dedupeKey })!
    return { id: existing.id, duplicate: true, targets: [], leased: [] }
  }
  const leased: LeasedDelivery[] = []
  for (const target of targets) {
    const leaseUntil = leases.find(([t]) => t === target)?.[1]
    if (leaseUntil === undefined) {
      st.insertDelivery.run({ notificationId: n.id, target, now })
      continue
    }
    const { id } = st.insertLeasedDelivery.get({ notificationId: n.id, target, leaseUntil, now })!
    leased.push({ deliveryId: id, notificationId: n.id, target, attempt: 1, fence: 1, retrySince: now })
  }
  return { id: n.id, duplicate: false, targets: [...targets], leased }
}

// Claims up to `limit` due deliveries of one target. The lease is written as
// next_attempt_at, so a lease that expires (the process died mid-attempt)
// makes the row due again with no reaper; the fence is bumped so the old
// holder's late result is ignored.
export function claimDue (db: Db, target: string, limit: number, now: number, leaseUntil: number): ClaimedDelivery[] {
  const st = statements(db)
  const claimed: ClaimedDelivery[] = []
  for (const { id } of st.dueIds.all({ target, now, limit })) {
    const r = st.lease.get({ id, leaseUntil, now })!
    const { source, receivedAt, verification, verificationError, ...stored } = st.body.get({ id: r.notificationId })!
    let body: Buffer
    try {
      body = loadBody(db, stored)
    } catch (err) {
      if (!(err instanceof BodyDecodeError)) throw err
      st.markUnreadable.run({ id: r.id, now, error: `the stored body cannot be read: ${err.message}` })
      continue
    }
    claimed.push({
      deliveryId: r.id,
      notificationId: r.notificationId,
      target,
      attempt: r.attempts,
      fence: r.fence,
      retrySince: r.retrySince,
      body,
      facts: { source, receivedAt, verification, verificationError }
    })
  }
  return claimed
}

// Every attempt is history and is kept, even a stale one; only the delivery's
// state is guarded by the fence. Returns false when the fence was stale.
function settle (db: Db, a: AttemptRecord, outcome: 'complete' | 'scheduleRetry' | 'markDead' | 'releaseAttempt', values: { now: number; at?: number }): boolean {
  const st = statements(db)
  st.insertAttempt.run({
    deliveryId: a.deliveryId,
    attempt: a.attempt,
    startedAt: a.startedAt,
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    error: a.error,
    responseExcerpt: a.responseExcerpt
  })
  const res = st[outcome].run({ id: a.deliveryId, fence: a.fence, statusCode: a.statusCode, error: a.error, now: values.now, at: values.at ?? null })
  return res.changes === 1
}

export function complete (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, 'complete', { now })
}

export function scheduleRetry (db: Db, a: AttemptRecord, nextAttemptAt: number, now: number): boolean {
  return settle(db, a, 'scheduleRetry', { now, at: nextAttemptAt })
}

export function markDead (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, 'markDead', { now })
}

// An attempt cut short by shutdown: kept in history, and the delivery is due
// again at once rather than after a backoff it did not earn.
export function releaseAttempt (db: Db, a: AttemptRecord, now: number): boolean {
  return settle(db, a, 'releaseAttempt', { now })
}

// Gives a claimed delivery that was never sent back (shutdown, or it waited
// too long for a slot): due at once, fence bumped.
export function release (db: Db, deliveryId: number, fence: number, now: number): boolean {
  return statements(db).release.run({ id: deliveryId, fence, now }).changes === 1
}

// A target that is down is probed, not sent everything (delivery/worker.ts);
// its due deliveries that reached the give-up time unprobed are dead all the
// same. In-flight ones (leased, lease not expired) are left to their attempt.
export function expireDue (db: Db, target: string, arrivedBefore: number, now: number): number {
  return db.update(deliveries)
    // An error of its own, if it had an attempt, says more than ours.
    .set({ status: 'dead', leaseUntil: null, updatedAt: now, lastError: sql`coalesce(${deliveries.lastError}, 'gave up: the target was failing, not attempted before the give-up time')` })
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, now), lte(deliveries.retrySince, arrivedBefore)))
    .run().changes
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
  return statements(db).nextDueAt.get({ target })?.at ?? null
}

export function touchHeartbeat (db: Db, now: number): void {
  db.insert(heartbeat).values({ id: 1, at: now })
    .onConflictDoUpdate({ target: heartbeat.id, set: { at: now } }).run()
}



export function listAttempts (db: Db, deliveryId: number): AttemptRow[] {
  return db.select().from(attempts).where(eq(attempts.deliveryId, deliveryId)).orderBy(asc(attempts.id)).all()
}

export function targetsOf (db: Db, notificationId: string): string[] {
  return db.select({ target: deliveries.target }).from(deliveries)
    .where(eq(deliveries.notificationId, notificationId)).all().map((r) => r.target)
}



// What a quarantined row keeps that a sender controls: the body and the text
// stored beside it (a reason can quote the payload). The caps count this, so a
// small body with large fields cannot grow the file past QUARANTINE_MAX_BYTES.
export function quarantineBytes (row: NewQuarantined): number {
  const text = [row.code, row.reason, row.notificationUuid, row.notificationType, row.environment, row.bundleId]
  return row.body.length + text.reduce((n, v) => n + (v === null || v === undefined ? 0 : Buffer.byteLength(v)), 0)
}

// Keeps a refused payload, then drops the oldest entries until both caps
// hold again: a flood of forgeries can cycle the quarantine, never fill the disk.
// The totals are one row kept by triggers (drizzle/0004), so the check costs
// the same with 10 rows or 10,000; only what is dropped is read.
export function quarantineRefused (db: Db, row: NewQuarantined, caps: QuarantineCaps): { id: number; dropped: number } {
  const stored = storeBody(db, row.body, 'known', row.receivedAt)
  const { id } = db.insert(quarantine).values({ ...row, ...stored, bytes: quarantineBytes(row) }).returning({ id: quarantine.id }).get()
  let { items, bytes } = db.select().from(quarantineTotals).where(eq(quarantineTotals.id, 1)).get()!
  let cut: number | null = null
  let after = 0
  while (items > caps.maxItems || bytes > caps.maxBytes) {
    const oldest = db.select({ id: quarantine.id, bytes: quarantine.bytes }).from(quarantine)
      .where(sql`${quarantine.id} > ${after}`).orderBy(asc(quarantine.id)).limit(256).all()
    if (oldest.length === 0) break
    for (const r of oldest) {
      if (items <= caps.maxItems && bytes <= caps.maxBytes) break
      cut = r.id
      items--
      bytes -= r.bytes
    }
    after = oldest[oldest.length - 1]!.id
  }
  const dropped = cut === null ? 0 : db.delete(quarantine).where(lte(quarantine.id, cut)).run().changes
  return { id, dropped }
}

export function listQuarantine (db: Db, limit: number, beforeId: number | null): QuarantineSummary[] {
  return db.select({
    id: quarantine.id, receivedAt: quarantine.receivedAt, code: quarantine.code, reason: quarantine.reason,
    notificationUuid: quarantine.notificationUuid, notificationType: quarantine.notificationType, environment: quarantine.environment,
    bundleId: quarantine.bundleId, bytes: quarantine.bytes, releasedAt: quarantine.releasedAt, releasedAs: quarantine.releasedAs
  }).from(quarantine)
    .where(beforeId === null ? undefined : sql`${quarantine.id} < ${beforeId}`)
    .orderBy(sql`${quarantine.id} DESC`).limit(limit).all()
}

export function findQuarantined (db: Db, id: number): Readable<QuarantineRow> | undefined {
  const row = db.select().from(quarantine).where(eq(quarantine.id, id)).get()
  return row === undefined ? undefined : withBody(db, row)
}

export function markReleased (db: Db, id: number, notificationId: string, now: number): boolean {
  return db.update(quarantine).set({ releasedAt: now, releasedAs: notificationId })
    .where(eq(quarantine.id, id)).run().changes === 1
}

export function quarantineSize (db: Db): { items: number; bytes: number } {
  const totals = db.select({ items: quarantineTotals.items, bytes: quarantineTotals.bytes }).from(quarantineTotals).where(eq(quarantineTotals.id, 1)).get()
  return totals ?? { items: 0, bytes: 0 }
}

// One batch of the compaction pass (compaction.ts): up to `limit` rows whose
// body is stored raw, after `cursor`, each rewritten in the form a body
// received now would take when that is smaller. Bodies that stay raw (too
// small or random to compress) keep their place in the partial index and are
// looked at again by the next pass: few, and small.
export function compactBodies (db: Db, cursor: CompactionCursor, limit: number, now: number): CompactionBatch {
  let scanned = 0
  let rewritten = 0
  let notificationsAfter = cursor.notificationsAfter
  if (notificationsAfter !== DONE) {
    const rows = db.select({ id: notifications.id, body: notifications.body, verification: notifications.verification }).from(notifications)
      .where(and(eq(notifications.bodyEncoding, 'raw'), notificationsAfter === null ? undefined : sql`${notifications.id} > ${notificationsAfter}`))
      .orderBy(asc(notifications.id)).limit(limit).all()
    for (const r of rows) {
      const stored = storeBody(db, r.body, chainPolicyFor(r.verification), now)
      if (stored.bodyEncoding === 'raw') continue
      db.update(notifications).set(stored).where(eq(notifications.id, r.id)).run()
      rewritten++
    }
    scanned += rows.length
    notificationsAfter = rows.length < limit ? DONE : rows[rows.length - 1]!.id
  }
  let quarantineAfter = cursor.quarantineAfter
  if (scanned < limit && quarantineAfter !== DONE) {
    const rows = db.select({ id: quarantine.id, body: quarantine.body }).from(quarantine)
      .where(and(eq(quarantine.bodyEncoding, 'raw'), quarantineAfter === null ? undefined : sql`${quarantine.id} > ${quarantineAfter}`))
      .orderBy(asc(quarantine.id)).limit(limit - scanned).all()
    for (const r of rows) {
      const stored = storeBody(db, r.body, 'known', now)
      if (stored.bodyEncoding === 'raw') continue
      db.update(quarantine).set(stored).where(eq(quarantine.id, r.id)).run()
      rewritten++
    }
    quarantineAfter = rows.length < limit - scanned ? DONE : rows[rows.length - 1]!.id
    scanned += rows.length
  }
  return { scanned, rewritten, cursor: { notificationsAfter, quarantineAfter } }
}

// Retention: deletes up to `limit` notifications received before `cutoff`
// whose every delivery is delivered (pending and dead ones are never pruned).
// Deliveries and attempts go with them (ON DELETE CASCADE). Freed pages are
// reused by later inserts, so at a steady rate the file stops growing.
export function pruneDelivered (db: Db, cutoff: number, limit: number): number {
  return db.run(sql`
    DELETE FROM notifications WHERE id IN (
      SELECT n.id FROM notifications n
       WHERE n.received_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status <> ${statusLiteral('delivered')})
       ORDER BY n.id LIMIT ${limit})`).changes
}
