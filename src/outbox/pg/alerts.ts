// The alert tables of the PostgreSQL engine (issue 17; ../alerts.ts is the
// SQLite side). Several instances run these against one database at once:
// an episode is opened by the one insert the partial unique index lets in
// and closed by the one update that finds it open, and only that writer
// queues the alert; messages are claimed with FOR UPDATE SKIP LOCKED, so two
// senders never hold the same one.
import { and, asc, desc, eq, gt, inArray, isNull, lt, lte, sql } from 'drizzle-orm'
import { alertEpisodes, alertMessages, deliveries, notifications, quarantine } from '../../db/schema-pg.ts'
import { statusLiteral } from '../../db/schema.ts'
import type { AlertEvent } from '../../db/vocabulary.ts'
import { messageRows } from '../alerts.ts'
import { alertFactsOf, type AlertEdge, type AlertEpisode, type AlertMessage, type AlertOutcome } from '../engine.ts'
import type { Q } from './connection.ts'

async function queue (q: Q, edge: AlertEdge, episodeId: number | null, at: number): Promise<number[]> {
  const rows = messageRows(edge, episodeId, at)
  if (rows.length === 0) return []
  return (await q.insert(alertMessages).values(rows).returning({ id: alertMessages.id })).map((r) => r.id)
}

export async function openAlert (q: Q, edge: AlertEdge, at: number): Promise<number | null> {
  const [opened] = await q.insert(alertEpisodes).values({ event: edge.event, subject: edge.subject, openedAt: at, facts: JSON.stringify(edge.facts) })
    .onConflictDoNothing().returning({ id: alertEpisodes.id })
  if (opened === undefined) return null
  await queue(q, edge, opened.id, at)
  return opened.id
}

export async function closeAlert (q: Q, event: AlertEvent, subject: string, tell: AlertEdge | null, at: number): Promise<boolean> {
  const [closed] = await q.update(alertEpisodes).set({ closedAt: at })
    .where(and(eq(alertEpisodes.event, event), eq(alertEpisodes.subject, subject), isNull(alertEpisodes.closedAt)))
    .returning({ id: alertEpisodes.id })
  if (closed === undefined) return false
  if (tell !== null) await queue(q, tell, closed.id, at)
  return true
}

export function queueAlert (q: Q, edge: AlertEdge, at: number): Promise<number[]> {
  return queue(q, edge, null, at)
}

const messageOf = (r: typeof alertMessages.$inferSelect): AlertMessage => ({ ...r, facts: alertFactsOf(r.facts) })

export async function claimAlerts (q: Q, limit: number, now: number, leaseUntil: number): Promise<AlertMessage[]> {
  const due = q.select({ id: alertMessages.id }).from(alertMessages)
    .where(and(sql`${alertMessages.status} = 'pending'`, lte(alertMessages.nextAttemptAt, now)))
    .orderBy(asc(alertMessages.nextAttemptAt)).limit(limit).for('update', { skipLocked: true })
  const rows = await q.update(alertMessages).set({ attempts: sql`${alertMessages.attempts} + 1`, nextAttemptAt: leaseUntil })
    .where(inArray(alertMessages.id, due)).returning()
  return rows.map(messageOf)
}

export async function settleAlert (q: Q, id: number, attempts: number, outcome: AlertOutcome, now: number): Promise<boolean> {
  const set = outcome.status === 'sent'
    ? { status: 'sent' as const, sentAt: now, lastError: null }
    : outcome.status === 'pending'
      ? { nextAttemptAt: outcome.nextAttemptAt, lastError: outcome.error }
      : { status: 'failed' as const, lastError: outcome.error }
  const rows = await q.update(alertMessages).set(set)
    .where(and(eq(alertMessages.id, id), eq(alertMessages.attempts, attempts), sql`${alertMessages.status} = 'pending'`)).returning({ id: alertMessages.id })
  return rows.length === 1
}

export async function alertEpisodesLatest (q: Q): Promise<AlertEpisode[]> {
  const rows = await q.selectDistinctOn([alertEpisodes.event, alertEpisodes.subject]).from(alertEpisodes)
    .orderBy(alertEpisodes.event, alertEpisodes.subject, desc(alertEpisodes.id))
  return rows.sort((a, b) => b.openedAt - a.openedAt).map((r) => ({ ...r, facts: alertFactsOf(r.facts) }))
}

export async function alertHistory (q: Q, limit: number): Promise<AlertMessage[]> {
  return (await q.select().from(alertMessages).orderBy(desc(alertMessages.id)).limit(limit)).map(messageOf)
}

export async function deadSince (q: Q, target: string, since: number): Promise<number> {
  const [r] = await q.select({ n: sql`count(*)`.mapWith(Number) }).from(deliveries)
    .where(and(eq(deliveries.target, target), sql`${deliveries.status} = ${statusLiteral('dead')}`, gt(deliveries.updatedAt, since)))
  return r?.n ?? 0
}

export async function quarantinedSince (q: Q, since: number): Promise<number> {
  const [r] = await q.select({ n: sql`count(*)`.mapWith(Number) }).from(quarantine).where(gt(quarantine.receivedAt, since))
  return r?.n ?? 0
}

export async function lastPostedAt (q: Q, environment: string): Promise<number | null> {
  const [r] = await q.select({ at: notifications.receivedAt }).from(notifications)
    .where(and(eq(notifications.environment, environment), eq(notifications.source, 'webhook')))
    .orderBy(desc(notifications.receivedAt)).limit(1)
  return r?.at ?? null
}

// As ../alerts.ts pruneAlerts.
export async function pruneAlerts (q: Q, cutoff: number): Promise<number> {
  const messages = await q.delete(alertMessages).where(and(sql`${alertMessages.status} <> 'pending'`, lt(alertMessages.createdAt, cutoff))).returning({ id: alertMessages.id })
  const episodes = await q.delete(alertEpisodes).where(lt(alertEpisodes.closedAt, cutoff)).returning({ id: alertEpisodes.id })
  return messages.length + episodes.length
}
