// Pure: from the facts read now and the latest episode of each (event,
// subject), which episodes to open and which to close. No clock, no I/O:
// the monitor (monitor.ts) reads the facts, calls this, and writes what it
// says; the database's partial unique index then makes each open happen
// once, whichever instance asks.
//
// Two kinds of event:
//   - conditions (target.failing, apple.silent): open when the condition
//     starts, closed with their own end event (target.recovered,
//     apple.resumed) when it ends;
//   - storage.failing: writes failing (the probe write refused) or the
//     database's disk under 10% free, closed with storage.recovered;
//   - grouped happenings (deliveries.dead, quarantine.received): an episode
//     opens at the first new one and tells the count so far, stays open for
//     the group window (nothing more is told meanwhile), then closes
//     silently; what happened in the window is told by the next episode,
//     counted from where the last one stopped (facts.until).
import type { AlertEvent } from '../db/vocabulary.ts'
import type { AlertEpisode, AlertFacts, TargetHealth } from '../outbox/engine.ts'

export interface Thresholds {
  targetFailingAfterMs: number
  // 0: apple.silent is off.
  appleSilentAfterMs: number
  // Sandbox is quiet for days in many apps (no one testing): off (0) unless set.
  appleSilentSandboxAfterMs: number
  groupWindowMs: number
}

// The environments whose silence is watched, each with its threshold.
export const WATCHED_ENVIRONMENTS = ['Production', 'Sandbox'] as const
const silenceThreshold = (t: Thresholds, environment: typeof WATCHED_ENVIRONMENTS[number]): number =>
  environment === 'Production' ? t.appleSilentAfterMs : t.appleSilentSandboxAfterMs

export interface Observed {
  now: number
  targets: ReadonlyArray<{ name: string; health: TargetHealth }>
  // When Apple last posted a notification per environment (the webhook only:
  // what a catch-up fetches says nothing of whether Apple's URL is right).
  lastReceived: ReadonlyArray<{ environment: string | null; at: number }>
  // Counts since countFrom() of each grouped subject.
  dead: ReadonlyArray<{ target: string; count: number }>
  quarantined: number
  // The last catch-up run per app and environment (history_runs).
  catchUps: ReadonlyArray<{ bundleId: string; environment: string; finishedAt: number | null; added: number; lastError: string | null }>
  // When the certificate storehook serves stops being valid; null: it serves no TLS itself.
  tlsExpiresAt: number | null
  storage: {
    // Whether a write (the readiness probe's) just committed.
    writes: boolean
    // Free share of the database file's disk, 0-1; null: not known (PostgreSQL's disk is not ours to see).
    diskFree: number | null
  }
}

export type Change =
  | { kind: 'open'; event: AlertEvent; subject: string; facts: AlertFacts }
  | { kind: 'close'; event: AlertEvent; subject: string; tell: { event: AlertEvent; facts: AlertFacts } | null }

export const QUARANTINE_SUBJECT = 'quarantine'
// storage.failing's two subjects: writes failing, and the disk nearly full.
export const WRITES_SUBJECT = 'writes'
export const DISK_SUBJECT = 'disk'
export const DISK_FREE_MIN = 0.10
export const TLS_SUBJECT = 'certificate'
export const TLS_WARN_BEFORE_MS = 14 * 86_400_000

// A catch-up run that failed because Apple refused the key (the client's
// 401 message, src/appstore/client.ts).
const KEY_REFUSED = /answered 401 Unauthorized/

const key = (event: AlertEvent, subject: string): string => `${event}\u0000${subject}`

export function latestByKey (episodes: readonly AlertEpisode[]): Map<string, AlertEpisode> {
  return new Map(episodes.map((e) => [key(e.event, e.subject), e]))
}

const isOpen = (e: AlertEpisode | undefined): e is AlertEpisode => e !== undefined && e.closedAt === null
const numberIn = (facts: AlertFacts, name: string): number | null => typeof facts[name] === 'number' ? facts[name] : null

// Where a grouped subject's next count starts: where the last episode's
// stopped, or one window back for a subject never told of (so a first start
// on an old database does not announce last year's dead deliveries).
export function countFrom (latest: AlertEpisode | undefined, now: number, windowMs: number): number {
  return latest === undefined ? now - windowMs : numberIn(latest.facts, 'until') ?? latest.openedAt
}

// A target has failed every attempt since: its last success, or the arrival
// of the oldest delivery still waiting, whichever is later.
export function failingSince (h: TargetHealth): number | null {
  if (h.pending === 0 || h.oldestPendingAt === null || h.lastErrorAt === null) return null
  // Its latest outcome must be a failure: a success after it means it answers.
  if (h.lastSuccessAt !== null && h.lastSuccessAt >= h.lastErrorAt) return null
  return Math.max(h.lastSuccessAt ?? 0, h.oldestPendingAt)
}

function targetChanges (o: Observed, latest: Map<string, AlertEpisode>, t: Thresholds, out: Change[]): void {
  for (const { name, health } of o.targets) {
    const open = latest.get(key('target.failing', name))
    if (isOpen(open)) {
      const since = numberIn(open.facts, 'failingSince') ?? open.openedAt
      if (health.lastSuccessAt !== null && health.lastSuccessAt > since) {
        out.push({ kind: 'close', event: 'target.failing', subject: name, tell: { event: 'target.recovered', facts: { downForMs: health.lastSuccessAt - since, pending: health.pending } } })
      }
      continue
    }
    const since = failingSince(health)
    if (since !== null && o.now - since >= t.targetFailingAfterMs) {
      out.push({ kind: 'open', event: 'target.failing', subject: name, facts: { failingSince: since, failingForMs: o.now - since, pending: health.pending } })
    }
  }
}

function appleChanges (o: Observed, latest: Map<string, AlertEpisode>, t: Thresholds, out: Change[]): void {
  for (const environment of WATCHED_ENVIRONMENTS) {
    const after = silenceThreshold(t, environment)
    const open = latest.get(key('apple.silent', environment))
    // Counted only once a first notification ever arrived: a new install is not silent, it is waiting.
    const last = o.lastReceived.find((r) => r.environment === environment)?.at ?? null
    if (isOpen(open)) {
      if (after === 0) {
        out.push({ kind: 'close', event: 'apple.silent', subject: environment, tell: null })
      } else if (last !== null && o.now - last < after) {
        const before = numberIn(open.facts, 'lastAt') ?? open.openedAt
        out.push({ kind: 'close', event: 'apple.silent', subject: environment, tell: { event: 'apple.resumed', facts: { silentForMs: last - before } } })
      }
      continue
    }
    if (after > 0 && last !== null && o.now - last >= after) {
      out.push({ kind: 'open', event: 'apple.silent', subject: environment, facts: { lastAt: last, silentForMs: o.now - last } })
    }
  }
}

function groupChange (event: AlertEvent, subject: string, count: number, o: Observed, latest: Map<string, AlertEpisode>, t: Thresholds, out: Change[]): void {
  const last = latest.get(key(event, subject))
  if (isOpen(last)) {
    if (o.now - last.openedAt >= t.groupWindowMs) out.push({ kind: 'close', event, subject, tell: null })
    return
  }
  if (count > 0) out.push({ kind: 'open', event, subject, facts: { count, windowMs: o.now - countFrom(last, o.now, t.groupWindowMs), until: o.now } })
}

function storageChanges (o: Observed, latest: Map<string, AlertEpisode>, out: Change[]): void {
  const conditions: Array<[string, boolean | null, AlertFacts]> = [
    [WRITES_SUBJECT, !o.storage.writes, {}],
    [DISK_SUBJECT, o.storage.diskFree === null ? null : o.storage.diskFree < DISK_FREE_MIN, { freePercent: Math.round((o.storage.diskFree ?? 0) * 1000) / 10 }]
  ]
  for (const [subject, failing, facts] of conditions) {
    if (failing === null) continue
    const open = isOpen(latest.get(key('storage.failing', subject)))
    if (failing && !open) out.push({ kind: 'open', event: 'storage.failing', subject, facts })
    if (!failing && open) out.push({ kind: 'close', event: 'storage.failing', subject, tell: { event: 'storage.recovered', facts } })
  }
}

// catchup.found per environment (grouped: what the runs that finished since
// the last alert added); appstore.rejected per app and environment while its
// last run says the key was refused (it ends silently: the next run's success).
function appStoreChanges (o: Observed, latest: Map<string, AlertEpisode>, t: Thresholds, out: Change[]): void {
  for (const environment of new Set(o.catchUps.map((r) => r.environment))) {
    const since = countFrom(latest.get(key('catchup.found', environment)), o.now, t.groupWindowMs)
    const found = o.catchUps.filter((r) => r.environment === environment && r.finishedAt !== null && r.finishedAt > since && r.lastError === null)
      .reduce((n, r) => n + r.added, 0)
    groupChange('catchup.found', environment, found, o, latest, t, out)
  }
  for (const r of o.catchUps) {
    const subject = `${r.bundleId} ${r.environment}`
    const open = isOpen(latest.get(key('appstore.rejected', subject)))
    if (!open && r.lastError !== null && KEY_REFUSED.test(r.lastError)) out.push({ kind: 'open', event: 'appstore.rejected', subject, facts: {} })
    if (open && r.finishedAt !== null && r.lastError === null) out.push({ kind: 'close', event: 'appstore.rejected', subject, tell: null })
  }
}

function tlsChange (o: Observed, latest: Map<string, AlertEpisode>, out: Change[]): void {
  if (o.tlsExpiresAt === null) return
  const open = isOpen(latest.get(key('tls.expiring', TLS_SUBJECT)))
  const expiring = o.tlsExpiresAt - o.now < TLS_WARN_BEFORE_MS
  if (expiring && !open) out.push({ kind: 'open', event: 'tls.expiring', subject: TLS_SUBJECT, facts: { expiresAt: o.tlsExpiresAt, expiresInMs: o.tlsExpiresAt - o.now } })
  // Renewed: the episode ends without a word (the file was replaced, the server reloaded it).
  if (!expiring && open) out.push({ kind: 'close', event: 'tls.expiring', subject: TLS_SUBJECT, tell: null })
}

export function decide (o: Observed, episodes: readonly AlertEpisode[], t: Thresholds): Change[] {
  const latest = latestByKey(episodes)
  const out: Change[] = []
  targetChanges(o, latest, t, out)
  appleChanges(o, latest, t, out)
  for (const d of o.dead) groupChange('deliveries.dead', d.target, d.count, o, latest, t, out)
  groupChange('quarantine.received', QUARANTINE_SUBJECT, o.quarantined, o, latest, t, out)
  storageChanges(o, latest, out)
  appStoreChanges(o, latest, t, out)
  tlsChange(o, latest, out)
  return out
}
