// Reads the facts alerts are decided on from the storage, on a timer, and
// writes what episodes.ts decides: an episode opened or closed, each with
// its alert queued to the destinations that want that event, in one
// transaction. On PostgreSQL one instance at a time runs a round
// (tryExclusive); the unique index of open episodes is the backstop.
import { statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { AlertsConfig, Config, TargetConfig } from '../config.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import type { AlertEdge, AlertFacts, Storage } from '../outbox/engine.ts'
import { countFrom, decide, latestByKey, QUARANTINE_SUBJECT, WATCHED_ENVIRONMENTS, WRITES_SUBJECT, type Change } from './episodes.ts'
import { sendAtOnce } from './sender.ts'
import { certificateExpiresAt } from '../tls.ts'

type MonitorStorage = Pick<Storage, 'alertEpisodes' | 'targetHealth' | 'lastPostedAt' | 'lastCatchUps' | 'deadSince' | 'quarantinedSince' | 'openAlert' | 'closeAlert' | 'queueAlert' | 'probe' | 'tryExclusive'>

const SOON_SPACING_MS = 5000

export interface MonitorOptions {
  storage: MonitorStorage
  alerts: AlertsConfig
  targets: readonly TargetConfig[]
  publicUrl: string | null
  // The SQLite file whose disk is watched; null on PostgreSQL.
  databasePath: string | null
  // The certificate storehook serves; null: no TLS of its own.
  certPath: string | null
  log: Logger
  // A new alert was queued: the sender may go now.
  onQueued: () => void
}

// The names of the destinations that want `event`.
export function destinationsFor (alerts: AlertsConfig, event: AlertEvent): string[] {
  return alerts.destinations.filter((d) => d.events === null || d.events.includes(event)).map((d) => d.name)
}

export function edgeOf (alerts: AlertsConfig, event: AlertEvent, subject: string, facts: AlertFacts): AlertEdge {
  return { event, subject, facts, destinations: destinationsFor(alerts, event) }
}

export class AlertMonitor {
  #o: MonitorOptions
  #timer: NodeJS.Timeout | null = null
  #round: Promise<void> | null = null
  // storage.failing told without the database (it could not take the
  // episode): when, so it is told once per outage, and its end told too.
  // In memory by necessity: the one fact the database cannot keep is that
  // the database is failing. A restart mid-outage tells it again.
  #toldWithoutDatabase: number | null = null
  #lastSoon = 0

  constructor (o: MonitorOptions) {
    this.#o = o
  }

  start (): void {
    if (this.#timer !== null) return
    // The first round one interval after start, not at once: the server's
    // start-up (migrations, leases reclaimed, the catch-up) has the database
    // first, and nothing an alert tells is lost by waiting one interval.
    this.#timer = setInterval(() => { this.#run() }, this.#o.alerts.checkIntervalMs)
  }

  // Apple was just answered 503 because a write failed: check now rather
  // than at the next interval, so storage.failing goes out within seconds.
  // At most once per SOON_SPACING_MS, whatever the rate of 503s, so an outage
  // under load costs the database a probe every few seconds, not one per request.
  checkSoon (now = Date.now()): void {
    if (this.#timer === null || now - this.#lastSoon < SOON_SPACING_MS) return
    this.#lastSoon = now
    this.#run()
  }

  #run (): void {
    if (this.#round !== null) return
    this.#round = this.#o.storage.tryExclusive('alerts-monitor', () => this.check())
      .then(() => {}, (err: unknown) => { this.#o.log.warn({ err }, 'Could not check the alert conditions; will try again.') })
      .finally(() => { this.#round = null })
  }

  // One round: read, decide, write. Returns what changed (tests).
  async check (now = Date.now()): Promise<Change[]> {
    const s = this.#o.storage
    const a = this.#o.alerts
    // First a write, as /readyz makes one: whether the database takes writes
    // now decides how this round can tell anything.
    const writes = await s.probe().then(() => true, () => false)
    const episodes = await s.alertEpisodes().catch((err: unknown) => {
      if (writes) throw err
      return null
    })
    if (!writes && (episodes === null || !episodes.some((e) => e.event === 'storage.failing' && e.subject === WRITES_SUBJECT && e.closedAt === null))) {
      return await this.#tellWithoutDatabase(now)
    }
    if (episodes === null) return []
    if (writes && this.#toldWithoutDatabase !== null) {
      const since = this.#toldWithoutDatabase
      await s.queueAlert(edgeOf(a, 'storage.recovered', WRITES_SUBJECT, { downForMs: now - since }), now)
      this.#toldWithoutDatabase = null
      this.#o.onQueued()
    }
    const latest = latestByKey(episodes)
    const grouped = (event: AlertEvent, subject: string): number | null => {
      const last = latest.get(`${event}\u0000${subject}`)
      return last !== undefined && last.closedAt === null ? null : countFrom(last, now, a.groupWindowMs)
    }
    const targets = await Promise.all(this.#o.targets.map(async (t) => ({ name: t.name, health: await s.targetHealth(t.name) })))
    const dead = await Promise.all(this.#o.targets.map(async (t) => {
      const since = grouped('deliveries.dead', t.name)
      return { target: t.name, count: since === null ? 0 : await s.deadSince(t.name, since) }
    }))
    const quarantineSince = grouped('quarantine.received', QUARANTINE_SUBJECT)
    const quarantined = quarantineSince === null ? 0 : await s.quarantinedSince(quarantineSince)
    const lastReceived = []
    for (const environment of WATCHED_ENVIRONMENTS) {
      const at = await s.lastPostedAt(environment)
      if (at !== null) lastReceived.push({ environment, at })
    }
    const storage = { writes, diskFree: await this.#diskFree() }
    const catchUps = await s.lastCatchUps()
    const tlsExpiresAt = this.#o.certPath === null ? null : certificateExpiresAt(this.#o.certPath)
    const changes = decide({ now, targets, lastReceived, dead, quarantined, storage, catchUps, tlsExpiresAt }, episodes, a)
    const applied: Change[] = []
    for (const c of changes) {
      const done = c.kind === 'open'
        ? await s.openAlert(edgeOf(a, c.event, c.subject, c.facts), now) !== null
        : await s.closeAlert(c.event, c.subject, c.tell === null ? null : edgeOf(a, c.tell.event, c.subject, c.tell.facts), now)
      // Not done: another instance got there first, and it tells.
      if (!done) continue
      applied.push(c)
      const event = c.kind === 'open' ? c.event : c.tell?.event ?? c.event
      this.#o.log.info({ event, subject: c.subject, episode: c.kind }, c.kind === 'open' ? 'Alert episode opened.' : 'Alert episode closed.')
    }
    if (applied.length > 0) this.#o.onQueued()
    return applied
  }

  // The database refuses writes, so the episode cannot be kept: the alert
  // goes out at once, once per outage, with no retry (a destination down
  // at the same moment misses it; storage.recovered is queued durably once
  // writes return).
  async #tellWithoutDatabase (now: number): Promise<Change[]> {
    if (this.#toldWithoutDatabase !== null) return []
    this.#toldWithoutDatabase = now
    const outcomes = await sendAtOnce({ alerts: this.#o.alerts, publicUrl: this.#o.publicUrl }, 'storage.failing', WRITES_SUBJECT, {}, now)
    this.#o.log.error({ event: 'storage.failing', outcomes: outcomes.map((o) => `${o.destination}: ${o.ok ? 'sent' : o.error}`) }, 'The database refuses writes: alert sent at once, without the database.')
    return [{ kind: 'open', event: 'storage.failing', subject: WRITES_SUBJECT, facts: {} }]
  }

  // Free share of the disk the SQLite file is on (statfs; null when unknown).
  async #diskFree (): Promise<number | null> {
    if (this.#o.databasePath === null) return null
    try {
      const fs = await statfs(dirname(this.#o.databasePath))
      return fs.blocks > 0 ? fs.bavail / fs.blocks : null
    } catch {
      return null
    }
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#round
  }
}
