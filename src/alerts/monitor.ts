// Reads the facts alerts are decided on from the storage, on a timer, and
// writes what episodes.ts decides: an episode opened or closed, each with
// its alert queued to the destinations that want that event, in one
// transaction. On PostgreSQL one instance at a time runs a round
// (tryExclusive); the unique index of open episodes is the backstop.
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { AlertsConfig, TargetConfig } from '../config.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import type { AlertEdge, AlertFacts, Storage } from '../outbox/engine.ts'
import { countFrom, decide, latestByKey, QUARANTINE_SUBJECT, type Change } from './episodes.ts'

type MonitorStorage = Pick<Storage, 'alertEpisodes' | 'targetHealth' | 'gauges' | 'deadSince' | 'quarantinedSince' | 'openAlert' | 'closeAlert' | 'tryExclusive'>

export interface MonitorOptions {
  storage: MonitorStorage
  alerts: AlertsConfig
  targets: readonly TargetConfig[]
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

  constructor (o: MonitorOptions) {
    this.#o = o
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => { this.#run() }, this.#o.alerts.checkIntervalMs)
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
    const episodes = await s.alertEpisodes()
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
    const { lastReceived } = await s.gauges()
    const changes = decide({ now, targets, lastReceived, dead, quarantined }, episodes, a)
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

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#round
  }
}
