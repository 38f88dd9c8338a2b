// Sends the queued alert messages (alert_messages rows), like a delivery
// worker sends deliveries: claims the due ones with a lease, sends each on
// its own (one destination that hangs holds back none of the others, and
// never the ingest or the deliveries: this loop only reads and writes alert
// rows), and records each outcome. The schedule lives in the rows, so a
// restart resumes it; on PostgreSQL several instances share the rows safely
// (the claim skips what another holds).
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { AlertsConfig, Config } from '../config.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import type { AlertFacts, AlertMessage, Storage } from '../outbox/engine.ts'
import { describe } from './messages.ts'
import { ALERT_TIMEOUT_MS, openChannel, type AlertChannel } from './send.ts'
import { alertVerdict } from './verdict.ts'

// Alerts on the wire at once, all destinations together.
const MAX_INFLIGHT = 16
// Longer than a send can take, so a live send's row is never claimed again.
const LEASE_MS = ALERT_TIMEOUT_MS * 3

export type SendResult = 'sent' | 'retry' | 'failed'

export interface SenderOptions {
  storage: Pick<Storage, 'claimAlerts' | 'settleAlert'>
  alerts: AlertsConfig
  publicUrl: string | null
  retry: Config['retry']
  intervalMs: number
  log: Logger
  onResult: (event: AlertEvent, result: SendResult) => void
}

export class AlertSender {
  #o: SenderOptions
  #channels: Map<string, AlertChannel>
  #inflight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | null = null
  #ticking: Promise<void> | null = null
  #stopped = false

  constructor (o: SenderOptions) {
    this.#o = o
    this.#channels = new Map(o.alerts.destinations.map((d) => [d.name, openChannel(d)]))
  }

  start (): void {
    // No destination, no message row is ever written: nothing to poll for.
    if (this.#timer !== null || this.#stopped || this.#channels.size === 0) return
    this.#timer = setInterval(() => { this.wake() }, this.#o.intervalMs)
    this.wake()
  }

  // Sends what is due now (after a new alert was queued), unless a round is under way.
  wake (): void {
    if (this.#stopped || this.#ticking !== null) return
    this.#ticking = this.#tick()
      .catch((err: unknown) => { this.#o.log.warn({ err }, 'Could not read the alerts to send; trying again.') })
      .finally(() => { this.#ticking = null })
  }

  async #tick (): Promise<void> {
    const room = MAX_INFLIGHT - this.#inflight.size
    if (room <= 0) return
    const due = await this.#o.storage.claimAlerts(room, LEASE_MS)
    for (const m of due) {
      const p = this.#send(m).finally(() => { this.#inflight.delete(p) })
      this.#inflight.add(p)
    }
  }

  async #send (m: AlertMessage): Promise<void> {
    const channel = this.#channels.get(m.destination)
    const sent = channel === undefined
      ? { ok: false, error: 'this destination is no longer configured', retryAfterMs: null }
      : await channel.send(describe(m.event, m.subject, m.facts, m.createdAt, this.#o.publicUrl), `alert_${m.id}`, m.attempts)
    const outcome = channel === undefined
      ? { status: 'failed' as const, error: sent.error! }
      : alertVerdict(sent, m, Date.now(), this.#o.retry)
    try {
      await this.#o.storage.settleAlert(m.id, m.attempts, outcome)
    } catch (err) {
      // The lease runs out and the alert is sent again: at least once.
      this.#o.log.warn({ err, destination: m.destination, event: m.event }, 'Could not record an alert\'s outcome.')
    }
    const result: SendResult = outcome.status === 'sent' ? 'sent' : outcome.status === 'failed' ? 'failed' : 'retry'
    this.#o.onResult(m.event, result)
    const fields = { destination: m.destination, event: m.event, attempt: m.attempts }
    if (outcome.status === 'sent') this.#o.log.info(fields, 'Alert sent.')
    else if (outcome.status === 'failed') this.#o.log.error({ ...fields, error: outcome.error }, 'Alert given up.')
    else this.#o.log.warn({ ...fields, error: outcome.error, retryAt: new Date(outcome.nextAttemptAt).toISOString() }, 'Alert not accepted; will retry.')
  }

  // Lets the sends on the wire finish (each bounded by its timeout), then closes.
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#ticking
    await Promise.allSettled([...this.#inflight])
    for (const c of this.#channels.values()) c.close()
  }
}

export interface TestOutcome {
  destination: string
  format: string
  ok: boolean
  error: string | null
}

// An alert sent now to every destination that wants it, each outcome told,
// without the database: the test alert (`storehook alert-test`: the person
// asking wants the answer, not a retry tomorrow), and storage.failing when
// the database itself cannot take the episode (monitor.ts).
export async function sendAtOnce (config: Pick<Config, 'alerts' | 'publicUrl'>, event: AlertEvent, subject: string, facts: AlertFacts, now = Date.now()): Promise<TestOutcome[]> {
  const wanted = config.alerts.destinations.filter((d) => d.events === null || d.events.includes(event))
  return await Promise.all(wanted.map(async (d) => {
    const channel = openChannel(d)
    try {
      const r = await channel.send(describe(event, subject, facts, now, config.publicUrl), `alert_${event}_${now}`, 1)
      return { destination: d.name, format: d.format, ok: r.ok, error: r.error }
    } finally {
      channel.close()
    }
  }))
}

export function sendTestAlerts (config: Pick<Config, 'alerts' | 'publicUrl'>, now = Date.now()): Promise<TestOutcome[]> {
  return sendAtOnce(config, 'test', 'storehook', {}, now)
}
