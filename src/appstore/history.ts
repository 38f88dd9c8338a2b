// Pages through Get Notification History and puts every signedPayload through
// the ingest, exactly as if Apple had POSTed it: decode, verify per
// VERIFY_SIGNATURES, route, enqueue (the outbox dedupes by notificationUUID);
// refused ones are quarantined. Progress is saved after every page, so an
// interrupted run resumes from its last paginationToken. Used by
// `storehook backfill` and by the server's automatic catch-up.
import type { FastifyBaseLogger as Logger } from 'fastify'
import { isAppError } from '../errors.ts'
import type { Ingest, Source } from '../ingest/ingest.ts'
import type { HistoryRun, Storage } from '../outbox/engine.ts'
import { AppleApiError, type ApiEnvironment, type AppStoreClient } from './client.ts'
import type { HistoryRunKind } from '../db/vocabulary.ts'

const DAY = 86_400_000
// How far back Apple keeps notification history.
export const HISTORY_DAYS: Record<ApiEnvironment, number> = { Production: 180, Sandbox: 30 }

export interface Window { startDate: number; endDate: number }

// Clamps a window to what Apple serves (a minute inside, so a run that takes
// a while does not cross the line); `clamped` says whether the start moved.
export function clampWindow (environment: ApiEnvironment, w: Window, now: number): Window & { clamped: boolean } {
  const earliest = now - HISTORY_DAYS[environment] * DAY + 60_000
  const endDate = Math.min(w.endDate, now)
  return w.startDate < earliest ? { startDate: earliest, endDate, clamped: true } : { startDate: w.startDate, endDate, clamped: false }
}

export interface Counts { pages: number; seen: number; added: number; already: number; refused: number }

export interface RunSpec extends Window {
  kind: HistoryRunKind
  runKey: string
  onlyFailures: boolean
}

export interface RunOptions {
  client: AppStoreClient
  ingest: Ingest
  outbox: Storage
  spec: RunSpec
  // An unfinished run with the same arguments: continue from its token and counts.
  resume?: HistoryRun | null
  source: Source
  log: Logger
  onPage?: (counts: Counts, hasMore: boolean) => void
  onAdded?: () => void
  signal?: AbortSignal
}

export interface RunResult extends Counts { id: number; resumed: boolean }

export async function runHistory (o: RunOptions): Promise<RunResult> {
  const { client, spec, log } = o
  const resume = o.resume ?? null
  const counts: Counts = resume === null
    ? { pages: 0, seen: 0, added: 0, already: 0, refused: 0 }
    : { pages: resume.pages, seen: resume.seen, added: resume.added, already: resume.already, refused: resume.refused }
  const window = resume === null ? spec : { startDate: resume.startDate, endDate: resume.endDate }
  const now = Date.now()
  const id = resume?.id ?? await o.outbox.insertRun({
    kind: spec.kind,
    runKey: spec.runKey,
    bundleId: client.bundleId,
    environment: client.environment,
    startDate: window.startDate,
    endDate: window.endDate,
    onlyFailures: spec.onlyFailures,
    paginationToken: null,
    startedAt: now,
    updatedAt: now
  })
  let token = resume?.paginationToken ?? null
  try {
    for (;;) {
      o.signal?.throwIfAborted()
      let page
      try {
        page = await client.notificationHistory({ ...window, onlyFailures: spec.onlyFailures }, token)
      } catch (err) {
        // A stored token can expire between runs: start the window again; the outbox dedupes what was already taken.
        if (err instanceof AppleApiError && err.status === 400 && token !== null) {
          log.warn({ bundleId: client.bundleId, environment: client.environment, apiCode: err.apiCode }, 'Apple refused the saved pagination token; starting the window again.')
          token = null
          continue
        }
        throw err
      }
      // The page's notifications go in together: the outbox's group commit
      // makes them one durable commit instead of twenty.
      const outcomes = await Promise.allSettled(page.notificationHistory.map(async (item) =>
        await o.ingest.accept(Buffer.from(JSON.stringify({ signedPayload: item.signedPayload })), o.source)))
      for (const r of outcomes) {
        counts.seen++
        if (r.status === 'fulfilled') {
          if (r.value.duplicate) counts.already++
          else {
            counts.added++
            o.onAdded?.()
          }
        // A refusal (4xx: bad signature, wrong bundle...) is counted and, when a JWS, quarantined by the ingest.
        } else if (isAppError(r.reason) && r.reason.statusCode < 500) counts.refused++
        else throw r.reason
      }
      counts.pages++
      const more = page.hasMore && page.paginationToken !== undefined
      token = more ? page.paginationToken! : null
      await o.outbox.updateRun(id, { ...counts, paginationToken: token, ...(more ? {} : { finishedAt: Date.now(), lastError: null }) })
      o.onPage?.({ ...counts }, more)
      if (!more) break
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    await o.outbox.updateRun(id, { lastError: message }).catch(() => {})
    throw err
  }
  return { id, resumed: resume !== null, ...counts }
}
