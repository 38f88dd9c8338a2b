// Every write of the PostgreSQL engine, one async function per verb, each
// running on the transaction engine.ts opens for it (none commits on its
// own). Several storehook instances run these against one database at once,
// so each is written to be correct under that: dedupe by the unique index
// with ON CONFLICT DO NOTHING, claims with FOR UPDATE SKIP LOCKED, outcomes
// guarded by the fencing token, the quarantine's totals kept by triggers
// whose row lock serialises concurrent writers.
import { and, asc, eq, gt, inArray, isNotNull, lte, sql } from 'drizzle-orm'
import { attempts, deliveries, heartbeat, historyRuns, notifications, quarantine, quarantineTotals } from '../../db/schema-pg.ts'
import { statusLiteral } from '../../db/schema.ts'
import { BodyDecodeError, chainPolicyFor } from '../bodies.ts'
import { DONE, type AttemptRecord, type ClaimedDelivery, type CompactionBatch, type CompactionCursor, type EnqueueResult, type LeasedDelivery, type Leases, type NewHistoryRun, type NewNotification, type NewQuarantined, type QuarantineCaps, type RunProgress } from '../engine.ts'
import { quarantineBytes } from '../store.ts'
import { loadBody, storeBody, type TxChainIds } from './bodies.ts'
import type { Q } from './connection.ts'

// One statement for the notification and its deliveries: each round trip
// costs a turn of both event loops, and bench/pg.ts showed ingest's sessions
// mostly idle in transaction, waiting for the client. The deliveries are
// inserted from the notification insert's RETURNING, so a duplicate (no row
// returned) adds none. A leased row is as a claim would leave it: first
// attempt, fence 1; the others start at 0, as the columns' defaults do.
// (getSQL: a builder embedded as itself would be put in parentheses;
// sql.param: an array embedded as itself would become a list of parameters.)
export async function enqueue (q: Q, n: NewNotification, targets: readonly string[], now: number, leases: Leases, ids?: TxChainIds): Promise<EnqueueResult> {
  const stored = await storeBody(q, n.body, chainPolicyFor(n.verification), now, ids)
  // A concurrent insert of the same key (Apple posting one notification to
  // two instances at once) makes this wait for the other's commit, then do
  // nothing: one row, and only its writer adds the deliveries.
  const insertNotification = q.insert(notifications).values({ ...n, ...stored })
    .onConflictDoNothing({ target: notifications.dedupeKey }).returning({ id: notifications.id })
  const leaseOf = targets.map((target) => leases.find(([t]) => t === target)?.[1] ?? null)
  const { rows } = await q.execute<{ id: string | null; target: string | null; lease_until: string | null }>(sql`
    WITH n AS (${insertNotification.getSQL()}),
    d AS (
      INSERT INTO ${deliveries} (notification_id, target, status, attempts, fence, lease_until, next_attempt_at, retry_since, created_at, updated_at)
      SELECT n.id, t.target, ${statusLiteral('pending')}, CASE WHEN t.lease IS NULL THEN 0 ELSE 1 END, CASE WHEN t.lease IS NULL THEN 0 ELSE 1 END,
             t.lease, coalesce(t.lease, ${now}), ${now}, ${now}, ${now}
        FROM n, unnest(${sql.param([...targets])}::text[], ${sql.param(leaseOf)}::bigint[]) AS t(target, lease)
      RETURNING id, target, lease_until)
    SELECT d.id, d.target, d.lease_until FROM n LEFT JOIN d ON true`)
  if (rows.length === 0) {
    const [existing] = await q.select({ id: notifications.id }).from(notifications).where(eq(notifications.dedupeKey, n.dedupeKey))
    // Read committed: the row that conflicted is committed, so this statement sees it.
    return { id: existing!.id, duplicate: true, targets: [], leased: [] }
  }
  // In the order of the targets given, as the SQLite engine returns them.
  const leased: LeasedDelivery[] = rows.filter((r) => r.id !== null && r.lease_until !== null)
    .sort((a, b) => targets.indexOf(a.target!) - targets.indexOf(b.target!))
    .map((r) => ({ deliveryId: Number(r.id), notificationId: n.id, target: r.target!, attempt: 1, fence: 1, retrySince: now }))
  return { id: n.id, duplicate: false, targets: [...targets], leased }
}

// Claims up to `limit` due deliveries of one target in one statement. SKIP
// LOCKED: a row another instance is claiming right now is passed over, not
// waited for, and once that claim commits the row is leased (next_attempt_at
// is the lease's end), so no two instances ever hold the same delivery. The
// lease written as next_attempt_at makes a row whose holder died due again
// when the lease ends; the fence bump makes that holder's late result a no-op.
export async function claimDue (q: Q, target: string, limit: number, now: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
  const { rows } = await q.execute<{ id: string; notification_id: string; attempts: number; fence: number; retry_since: string; due: string }>(sql`
    WITH due AS (
      SELECT id, next_attempt_at FROM ${deliveries}
       WHERE target = ${target} AND status = ${statusLiteral('pending')} AND next_attempt_at <= ${now}
       ORDER BY next_attempt_at, id LIMIT ${limit}
       FOR UPDATE SKIP LOCKED)
    UPDATE ${deliveries} d
       SET attempts = d.attempts + 1, fence = d.fence + 1, lease_until = ${leaseUntil}, next_attempt_at = ${leaseUntil}, updated_at = ${now}
      FROM due WHERE d.id = due.id
    RETURNING d.id, d.notification_id, d.attempts, d.fence, d.retry_since, due.next_attempt_at AS due`)
  // RETURNING has no order: the oldest due first, as SQLite's claim gives them.
  rows.sort((a, b) => Number(a.due) - Number(b.due) || Number(a.id) - Number(b.id))
  if (rows.length === 0) return []
  const bodies = await q.select({
    id: notifications.id, body: notifications.body, bodyEncoding: notifications.bodyEncoding, bodyChainId: notifications.bodyChainId,
    source: notifications.source, receivedAt: notifications.receivedAt, verification: notifications.verification, verificationError: notifications.verificationError
  }).from(notifications).where(inArray(notifications.id, [...new Set(rows.map((r) => r.notification_id))]))
  const byId = new Map(bodies.map((b) => [b.id, b]))
  const claimed: ClaimedDelivery[] = []
  for (const r of rows) {
    const { source, receivedAt, verification, verificationError, ...stored } = byId.get(r.notification_id)!
    let body: Buffer
    try {
      body = await loadBody(q, stored)
    } catch (err) {
      if (!(err instanceof BodyDecodeError)) throw err
      // Dead at once, with the reason: retrying cannot make it readable.
      await q.update(deliveries).set({ status: 'dead', leaseUntil: null, updatedAt: now, lastError: `the stored body cannot be read: ${err.message}` })
        .where(eq(deliveries.id, Number(r.id)))
      continue
    }
    claimed.push({ deliveryId: Number(r.id), notificationId: r.notification_id, target, attempt: r.attempts, fence: r.fence, retrySince: Number(r.retry_since), body, facts: { source, receivedAt: Number(receivedAt), verification, verificationError } })
  }
  return claimed
}

export type Outcome = 'complete' | 'scheduleRetry' | 'markDead' | 'releaseAttempt'

// Every attempt is history and is kept, even a stale one; only the
// delivery's state is guarded by the fence. False when the fence was stale.
export async function settle (q: Q, a: AttemptRecord, outcome: Outcome, now: number, at?: number): Promise<boolean> {
  await q.insert(attempts).values({
    deliveryId: a.deliveryId, attempt: a.attempt, startedAt: a.startedAt, durationMs: a.durationMs,
    statusCode: a.statusCode, error: a.error, responseExcerpt: a.responseExcerpt
  })
  const verdict = {
    complete: { status: 'delivered' as const, deliveredAt: now },
    scheduleRetry: { nextAttemptAt: at ?? now },
    markDead: { status: 'dead' as const },
    releaseAttempt: { nextAttemptAt: now, fence: sql`${deliveries.fence} + 1` }
  }[outcome]
  const updated = await q.update(deliveries)
    .set({ ...verdict, leaseUntil: null, updatedAt: now, lastStatusCode: a.statusCode, lastError: a.error })
    .where(and(eq(deliveries.id, a.deliveryId), eq(deliveries.fence, a.fence), eq(deliveries.status, 'pending')))
    .returning({ id: deliveries.id })
  return updated.length === 1
}

// The claim counted an attempt that was never made: take it back.
export async function release (q: Q, deliveryId: number, fence: number, now: number): Promise<boolean> {
  const updated = await q.update(deliveries)
    .set({ attempts: sql`${deliveries.attempts} - 1`, nextAttemptAt: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now })
    .where(and(eq(deliveries.id, deliveryId), eq(deliveries.fence, fence), eq(deliveries.status, 'pending')))
    .returning({ id: deliveries.id })
  return updated.length === 1
}

// Due deliveries of a failing target that reached the give-up time unprobed
// are dead (store.ts expireDue); leased ones are left to their attempt.
export async function expireDue (q: Q, target: string, arrivedBefore: number, now: number): Promise<number> {
  const rows = await q.update(deliveries)
    .set({ status: 'dead', leaseUntil: null, updatedAt: now, lastError: sql`coalesce(${deliveries.lastError}, 'gave up: the target was failing, not attempted before the give-up time')` })
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, now), lte(deliveries.retrySince, arrivedBefore)))
    .returning({ id: deliveries.id })
  return rows.length
}

// Unlike SQLite's (store.ts), where one process owns the file and every
// lease at start belongs to a process that died, other instances may be
// delivering right now under leases they hold: only leases already past
// their end are taken back. Such a row is due anyway (its next_attempt_at is
// the lease's end); this clears the lease and bumps the fence, so the dead
// holder's result, should it ever arrive, changes nothing.
export async function reclaimLeases (q: Q, now: number): Promise<number> {
  const rows = await q.update(deliveries)
    .set({ nextAttemptAt: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now })
    .where(and(eq(deliveries.status, 'pending'), isNotNull(deliveries.leaseUntil), lte(deliveries.leaseUntil, now)))
    .returning({ id: deliveries.id })
  return rows.length
}

// Delivers a notification again: existing deliveries become pending with a
// fresh give-up clock; named targets that never had it get a new row. null:
// every target the notification already has.
export async function replay (q: Q, notificationId: string, targets: readonly string[] | null, now: number): Promise<string[]> {
  const [exists] = await q.select({ id: notifications.id }).from(notifications).where(eq(notifications.id, notificationId))
  if (exists === undefined) return []
  const to = targets ?? (await q.select({ target: deliveries.target }).from(deliveries).where(eq(deliveries.notificationId, notificationId))).map((r) => r.target)
  if (to.length === 0) return []
  await q.insert(deliveries)
    .values(to.map((target) => ({ notificationId, target, status: 'pending' as const, nextAttemptAt: now, retrySince: now, createdAt: now, updatedAt: now })))
    .onConflictDoUpdate({
      target: [deliveries.notificationId, deliveries.target],
      set: { status: 'pending', nextAttemptAt: now, retrySince: now, leaseUntil: null, fence: sql`${deliveries.fence} + 1`, updatedAt: now }
    })
  return [...to]
}

export async function touchHeartbeat (q: Q, now: number): Promise<void> {
  await q.insert(heartbeat).values({ id: 1, at: now }).onConflictDoUpdate({ target: heartbeat.id, set: { at: now } })
}

// Keeps a refused payload, then drops the oldest entries until both caps
// hold again. The insert's trigger updates the totals row, whose lock this
// transaction then holds to its end: quarantines from several instances
// take turns here, so each reads totals that count every other's rows.
// What to drop is one statement: the running count and size from the
// oldest row up, read in id order until they cover the excess, so only what
// is dropped is read (the window streams over the primary key).
export async function quarantineRefused (q: Q, row: NewQuarantined, caps: QuarantineCaps): Promise<{ id: number; dropped: number }> {
  const stored = await storeBody(q, row.body, 'known', row.receivedAt)
  const [{ id }] = await q.insert(quarantine).values({ ...row, ...stored, bytes: quarantineBytes(row) }).returning({ id: quarantine.id }) as [{ id: number }]
  const { items, bytes } = (await q.select().from(quarantineTotals).where(eq(quarantineTotals.id, 1)))[0]!
  const excessItems = items - caps.maxItems
  const excessBytes = bytes - caps.maxBytes
  if (excessItems <= 0 && excessBytes <= 0) return { id, dropped: 0 }
  const { rows: [cut] } = await q.execute<{ id: string }>(sql`
    SELECT id FROM (SELECT id, count(*) OVER w AS n, sum(bytes) OVER w AS b FROM ${quarantine} WINDOW w AS (ORDER BY id)) oldest
     WHERE n >= ${excessItems} AND b >= ${excessBytes} ORDER BY id LIMIT 1`)
  // No prefix covers the excess (caps of 0): every row goes, as in SQLite.
  const dropped = await q.delete(quarantine).where(cut === undefined ? undefined : lte(quarantine.id, Number(cut.id))).returning({ id: quarantine.id })
  return { id, dropped: dropped.length }
}

export async function markReleased (q: Q, id: number, notificationId: string, now: number): Promise<boolean> {
  const rows = await q.update(quarantine).set({ releasedAt: now, releasedAs: notificationId }).where(eq(quarantine.id, id)).returning({ id: quarantine.id })
  return rows.length === 1
}

// One batch of the compaction pass (store.ts compactBodies): raw bodies
// after `cursor` rewritten compressed when that is smaller.
export async function compactBodies (q: Q, cursor: CompactionCursor, limit: number, now: number): Promise<CompactionBatch> {
  let scanned = 0
  let rewritten = 0
  let notificationsAfter = cursor.notificationsAfter
  if (notificationsAfter !== DONE) {
    const rows = await q.select({ id: notifications.id, body: notifications.body, verification: notifications.verification }).from(notifications)
      .where(and(eq(notifications.bodyEncoding, 'raw'), notificationsAfter === null ? undefined : gt(notifications.id, notificationsAfter)))
      .orderBy(asc(notifications.id)).limit(limit)
    for (const r of rows) {
      const stored = await storeBody(q, r.body, chainPolicyFor(r.verification), now)
      if (stored.bodyEncoding === 'raw') continue
      // Guarded by the encoding: another instance's pass may have rewritten it meanwhile.
      await q.update(notifications).set(stored).where(and(eq(notifications.id, r.id), eq(notifications.bodyEncoding, 'raw')))
      rewritten++
    }
    scanned += rows.length
    notificationsAfter = rows.length < limit ? DONE : rows[rows.length - 1]!.id
  }
  let quarantineAfter = cursor.quarantineAfter
  if (scanned < limit && quarantineAfter !== DONE) {
    const rows = await q.select({ id: quarantine.id, body: quarantine.body }).from(quarantine)
      .where(and(eq(quarantine.bodyEncoding, 'raw'), quarantineAfter === null ? undefined : gt(quarantine.id, quarantineAfter)))
      .orderBy(asc(quarantine.id)).limit(limit - scanned)
    for (const r of rows) {
      const stored = await storeBody(q, r.body, 'known', now)
      if (stored.bodyEncoding === 'raw') continue
      await q.update(quarantine).set(stored).where(and(eq(quarantine.id, r.id), eq(quarantine.bodyEncoding, 'raw')))
      rewritten++
    }
    quarantineAfter = rows.length < limit - scanned ? DONE : rows[rows.length - 1]!.id
    scanned += rows.length
  }
  return { scanned, rewritten, cursor: { notificationsAfter, quarantineAfter } }
}

// Retention: up to `limit` notifications received before `cutoff` whose
// every delivery is delivered; deliveries and attempts go with them (ON
// DELETE CASCADE). Two instances pruning at once delete disjoint rows or
// the same rows once: a row already deleted is simply not counted again.
export async function pruneDelivered (q: Q, cutoff: number, limit: number): Promise<number> {
  const { rowCount } = await q.execute(sql`
    DELETE FROM ${notifications} WHERE id IN (
      SELECT n.id FROM ${notifications} n
       WHERE n.received_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM ${deliveries} d WHERE d.notification_id = n.id AND d.status <> ${statusLiteral('delivered')})
       ORDER BY n.id LIMIT ${limit})`)
  return rowCount ?? 0
}

export async function insertRun (q: Q, row: NewHistoryRun): Promise<number> {
  const [r] = await q.insert(historyRuns).values(row).returning({ id: historyRuns.id })
  return r!.id
}

export async function updateRun (q: Q, id: number, progress: Partial<RunProgress>, now: number): Promise<boolean> {
  const rows = await q.update(historyRuns).set({ ...progress, updatedAt: now }).where(eq(historyRuns.id, id)).returning({ id: historyRuns.id })
  return rows.length === 1
}
