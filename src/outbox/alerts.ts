// The alert tables of the SQLite engine (issue 17): episodes and the
// messages that tell of them. Writes run in the writer thread, inside its
// transaction, so an episode and its messages commit together or not at
// all; reads run on the read connection.
import { and, asc, desc, eq, gt, isNull, lt, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { alertEpisodes, alertMessages, deliveries, notifications, quarantine, statusLiteral } from '../db/schema.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import { alertFactsOf, type AlertEdge, type AlertEpisode, type AlertMessage, type AlertOutcome } from './engine.ts'

// The message rows of one alert, one per destination.
export function messageRows (edge: AlertEdge, episodeId: number | null, at: number): Array<typeof alertMessages.$inferInsert> {
  const facts = JSON.stringify(edge.facts)
  return edge.destinations.map((destination) => ({
    episodeId, event: edge.event, subject: edge.subject, facts, destination, status: 'pending' as const, nextAttemptAt: at, createdAt: at
  }))
}

function queue (db: Db, edge: AlertEdge, episodeId: number | null, at: number): number[] {
  const rows = messageRows(edge, episodeId, at)
  if (rows.length === 0) return []
  return db.insert(alertMessages).values(rows).returning({ id: alertMessages.id }).all().map((r) => r.id)
}

export function openAlert (db: Db, edge: AlertEdge, at: number): number | null {
  // The partial unique index refuses a second open episode: no row, no alert.
  const opened = db.insert(alertEpisodes).values({ event: edge.event, subject: edge.subject, openedAt: at, facts: JSON.stringify(edge.facts) })
    .onConflictDoNothing().returning({ id: alertEpisodes.id }).get()
  if (opened === undefined) return null
  queue(db, edge, opened.id, at)
  return opened.id
}

export function closeAlert (db: Db, event: AlertEvent, subject: string, tell: AlertEdge | null, at: number): boolean {
  const closed = db.update(alertEpisodes).set({ closedAt: at })
    .where(and(eq(alertEpisodes.event, event), eq(alertEpisodes.subject, subject), isNull(alertEpisodes.closedAt)))
    .returning({ id: alertEpisodes.id }).get()
  if (closed === undefined) return false
  if (tell !== null) queue(db, tell, closed.id, at)
  return true
}

export function queueAlert (db: Db, edge: AlertEdge, at: number): number[] {
  return queue(db, edge, null, at)
}

const messageOf = (r: typeof alertMessages.$inferSelect): AlertMessage => ({ ...r, facts: alertFactsOf(r.facts) })

export function claimAlerts (db: Db, limit: number, now: number, leaseUntil: number): AlertMessage[] {
  const due = db.select().from(alertMessages)
    .where(and(sql`${alertMessages.status} = 'pending'`, lte(alertMessages.nextAttemptAt, now)))
    .orderBy(asc(alertMessages.nextAttemptAt)).limit(limit).all()
  return due.map((r) => {
    db.update(alertMessages).set({ attempts: r.attempts + 1, nextAttemptAt: leaseUntil }).where(eq(alertMessages.id, r.id)).run()
    return messageOf({ ...r, attempts: r.attempts + 1, nextAttemptAt: leaseUntil })
  })
}

// Recorded only by the attempt that claimed it (its attempt count is the fence).
export function settleAlert (db: Db, id: number, attempts: number, outcome: AlertOutcome, now: number): boolean {
  const set = outcome.status === 'sent'
    ? { status: 'sent' as const, sentAt: now, lastError: null }
    : outcome.status === 'pending'
      ? { nextAttemptAt: outcome.nextAttemptAt, lastError: outcome.error }
      : { status: 'failed' as const, lastError: outcome.error }
  return db.update(alertMessages).set(set)
    .where(and(eq(alertMessages.id, id), eq(alertMessages.attempts, attempts), sql`${alertMessages.status} = 'pending'`)).run().changes === 1
}

export function alertEpisodesLatest (db: Db): AlertEpisode[] {
  return db.select().from(alertEpisodes)
    .where(sql`${alertEpisodes.id} IN (SELECT max(id) FROM ${alertEpisodes} GROUP BY event, subject)`)
    .orderBy(desc(alertEpisodes.openedAt)).all().map((r) => ({ ...r, facts: alertFactsOf(r.facts) }))
}

export function alertHistory (db: Db, limit: number): AlertMessage[] {
  return db.select().from(alertMessages).orderBy(desc(alertMessages.id)).limit(limit).all().map(messageOf)
}

export function deadSince (db: Db, target: string, since: number): number {
  return db.select({ n: sql<number>`count(*)` }).from(deliveries)
    .where(and(eq(deliveries.target, target), sql`${deliveries.status} = ${statusLiteral('dead')}`, gt(deliveries.updatedAt, since))).get()?.n ?? 0
}

export function quarantinedSince (db: Db, since: number): number {
  return db.select({ n: sql<number>`count(*)` }).from(quarantine).where(gt(quarantine.receivedAt, since)).get()?.n ?? 0
}

// Newest first along notifications_environment (environment, received_at):
// the first webhook row found is the answer, however many fetched rows follow it.
export function lastPostedAt (db: Db, environment: string): number | null {
  return db.select({ at: notifications.receivedAt }).from(notifications)
    .where(and(eq(notifications.environment, environment), eq(notifications.source, 'webhook')))
    .orderBy(desc(notifications.receivedAt)).limit(1).get()?.at ?? null
}

// Old history goes; pending messages and open episodes stay whatever their
// age. An episode closed long ago is only the starting point of its subject's
// next count (episodes.ts countFrom), which falls back to one window back.
export function pruneAlerts (db: Db, cutoff: number): number {
  const messages = db.delete(alertMessages).where(and(sql`${alertMessages.status} <> 'pending'`, lt(alertMessages.createdAt, cutoff))).run().changes
  return messages + db.delete(alertEpisodes).where(lt(alertEpisodes.closedAt, cutoff)).run().changes
}
