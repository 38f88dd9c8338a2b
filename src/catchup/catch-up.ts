// Automatic catch-up: with App Store Server API keys, the server asks Apple's
// notification history for what it may have missed. At start it covers the
// time it was down (from the last notification received, or the end of the
// last successful catch-up, minus a margin, up to now); then, every
// CATCH_UP_INTERVAL_MS, it asks for onlyFailures over the last interval plus
// the margin. One run at a time, by construction: the next is scheduled only
// when the previous one has finished; and one instance at a time when
// several share a database (Storage.tryExclusive): each would ask Apple for
// the same window, doubling the API calls for nothing, so an instance that
// finds another catching up skips this run and tries at its next interval
// (ingesting what it found twice would still be safe: dedupe). A failed run is logged and the next
// interval tries again; every run is recorded in history_runs.
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { AppleApiConfig } from '../config.ts'
import type { CatchUpKind } from '../db/vocabulary.ts'
import type { Ingest } from '../ingest/ingest.ts'
import type { Storage } from '../outbox/engine.ts'
import { API_ENVIRONMENTS, clientsFor, type ApiEnvironment, type AppStoreClient } from '../appstore/client.ts'
import { clampWindow, runHistory, type RunResult } from '../appstore/history.ts'

export interface CatchUpOptions {
  api: AppleApiConfig
  outbox: Storage
  ingest: Ingest
  log: Logger
  onRecovered?: (environment: ApiEnvironment) => void
  onFailed?: (environment: ApiEnvironment) => void
}

export class CatchUp {
  #o: CatchUpOptions
  #timer: ReturnType<typeof setTimeout> | null = null
  #running: Promise<void> | null = null
  #abort = new AbortController()
  #stopped = false
  #clients: AppStoreClient[]

  constructor (o: CatchUpOptions) {
    this.#o = o
    this.#clients = clientsFor(o.api, API_ENVIRONMENTS, { signal: this.#abort.signal })
  }

  get running (): boolean { return this.#running !== null }

  start (): void {
    if (this.#stopped || this.#timer !== null || this.#running !== null) return
    this.#schedule(0, 'catch-up-start')
  }

  #schedule (delayMs: number, kind: CatchUpKind): void {
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#running = this.#o.outbox.tryExclusive('catch-up', () => this.#runAll(kind))
        .then((r) => { if (!r.ran) this.#o.log.info({ kind }, 'Another instance is catching up; skipped this run.') })
        // The database is away: the run could not even start.
        .catch((err: unknown) => { this.#o.log.warn({ kind, error: (err as Error).message }, 'Catch-up failed; the next one tries again.') })
        .finally(() => {
          this.#running = null
          if (!this.#stopped && this.#o.api.catchUpIntervalMs > 0) this.#schedule(this.#o.api.catchUpIntervalMs, 'catch-up-periodic')
        })
    }, delayMs)
  }

  async #window (client: AppStoreClient, kind: CatchUpKind, now: number): Promise<{ startDate: number; endDate: number }> {
    const { catchUpIntervalMs: interval, catchUpMarginMs: margin } = this.#o.api
    // Without an interval (or history) to go by, an hour back is the guess.
    const recent = now - Math.max(interval, 3_600_000) - margin
    if (kind === 'catch-up-periodic') return { startDate: now - interval - margin, endDate: now }
    const received = await this.#o.outbox.lastReceivedAt(client.bundleId, client.environment)
    const caughtUp = await this.#o.outbox.lastCaughtUpTo(client.bundleId, client.environment)
    const since = Math.max(received ?? 0, caughtUp ?? 0)
    return { startDate: since === 0 ? recent : since - margin, endDate: now }
  }

  async #runAll (kind: CatchUpKind): Promise<void> {
    for (const client of this.#clients) {
      if (this.#stopped) return
      const now = Date.now()
      const window = clampWindow(client.environment, await this.#window(client, kind, now), now)
      const log = this.#o.log
      const where = { bundleId: client.bundleId, environment: client.environment, kind }
      if (window.clamped) log.warn(where, 'Catch-up window clamped to what Apple keeps; older notifications cannot be asked for.')
      let r: RunResult
      try {
        r = await runHistory({
          client,
          ingest: this.#o.ingest,
          outbox: this.#o.outbox,
          spec: { kind, runKey: `${kind}:${client.bundleId}:${client.environment}:${now}`, onlyFailures: kind === 'catch-up-periodic', startDate: window.startDate, endDate: window.endDate },
          source: 'catch-up',
          log,
          signal: this.#abort.signal,
          onAdded: () => this.#o.onRecovered?.(client.environment)
        })
      } catch (err) {
        if (this.#stopped) return
        this.#o.onFailed?.(client.environment)
        // AppleApiError messages carry no token nor key.
        log.warn({ ...where, error: (err as Error).message }, 'Catch-up failed; the next one tries again.')
        continue
      }
      log[r.added > 0 ? 'warn' : 'info']({ ...where, startDate: new Date(window.startDate).toISOString(), seen: r.seen, added: r.added, already: r.already, refused: r.refused },
        r.added > 0 ? 'Catch-up recovered notifications storehook had missed.' : 'Catch-up found nothing missing.')
    }
  }

  // Safe twice; waits for a run in flight to stop.
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#abort.abort(new Error('storehook is stopping'))
    await this.#running?.catch(() => {})
  }
}
