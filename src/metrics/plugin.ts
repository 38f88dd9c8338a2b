// Prometheus metrics (prom-client). Counters are fed by the ingest and the
// delivery workers; the outbox gauges are read from the database, so they are
// true even after a restart or with the CLI writing beside us. Those reads
// are aggregates over the whole outbox (300-600 ms on the main thread with
// 300k notifications) and /metrics is public: they run at most once every
// GAUGE_REFRESH_MS, and every scrape in between shares the result.
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { vocabularyLabel } from '../apple/vocabulary.ts'
import type { Gauges } from '../outbox/engine.ts'
import { ATTEMPT_OUTCOMES, RECEIVE_OUTCOMES } from '../db/vocabulary.ts'

export interface Metrics {
  registry: Registry
  received: Counter<'version' | 'environment' | 'type' | 'verification' | 'outcome'>
  deliveries: Counter<'target' | 'outcome'>
  deliveryDuration: Histogram<'target'>
}

// How old a gauge read from the database may be (said in each one's help).
const GAUGE_REFRESH_MS = 5_000
const STALE = ' (read from the database at most every 5 s).'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export default fp(async (app) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'storehook_process_' })
  let snapshot: Promise<Gauges> | null = null
  let snapshotAt = 0
  const reads = (): Promise<Gauges> => {
    const now = Date.now()
    if (snapshot === null || now - snapshotAt >= GAUGE_REFRESH_MS) {
      snapshotAt = now
      snapshot = app.outbox.gauges()
      // A failed read is not kept: the next scrape asks again.
      snapshot.catch(() => { snapshot = null })
    }
    return snapshot
  }

  const metrics: Metrics = {
    registry,
    received: new Counter({
      name: 'storehook_notifications_received_total',
      help: `Notifications received, by version, environment, type, verification status and outcome (${RECEIVE_OUTCOMES.join(', ')}).`,
      labelNames: ['version', 'environment', 'type', 'verification', 'outcome'],
      registers: [registry]
    }),
    deliveries: new Counter({
      name: 'storehook_deliveries_total',
      help: `Delivery attempts by target and outcome (${ATTEMPT_OUTCOMES.join(', ')}); dead also counts deliveries given up unprobed while their target was failing.`,
      labelNames: ['target', 'outcome'],
      registers: [registry]
    }),
    deliveryDuration: new Histogram({
      name: 'storehook_delivery_duration_seconds',
      help: 'Time of one delivery attempt, by target.',
      labelNames: ['target'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry]
    })
  }
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_outbox_pending',
    help: 'Deliveries not yet delivered nor dead, by target' + STALE,
    labelNames: ['target'],
    registers: [registry],
    async collect () {
      const { pending } = await reads()
      this.reset()
      for (const r of pending) this.set({ target: r.target }, r.n)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_outbox_oldest_pending_seconds',
    help: 'Age of the oldest pending delivery, by target (0 when none)' + STALE,
    labelNames: ['target'],
    registers: [registry],
    async collect () {
      const { pending } = await reads()
      this.reset()
      const now = Date.now()
      for (const r of pending) this.set({ target: r.target }, Math.max(0, (now - r.oldest) / 1000))
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_outbox_dead',
    help: 'Deliveries marked dead (given up, replayable), by target' + STALE,
    labelNames: ['target'],
    registers: [registry],
    async collect () {
      const { dead } = await reads()
      this.reset()
      for (const r of dead) this.set({ target: r.target }, r.n)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_last_received_timestamp_seconds',
    help: 'When the last notification was received, by environment (what App Store Connect users check)' + STALE,
    labelNames: ['environment'],
    registers: [registry],
    async collect () {
      const { lastReceived } = await reads()
      this.reset()
      // The table keeps whatever environment a payload named: the rows are
      // folded here (newest per label), so a sender who named thousands of
      // environments still adds one series, `other`, also after a restart.
      const latest = new Map<string, number>()
      for (const r of lastReceived) {
        const environment = vocabularyLabel('environments', r.environment)
        latest.set(environment, Math.max(latest.get(environment) ?? 0, r.at))
      }
      for (const [environment, at] of latest) this.set({ environment }, at / 1000)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_quarantine_items',
    help: 'Refused payloads kept in the quarantine' + STALE,
    registers: [registry],
    async collect () {
      this.set((await reads()).quarantined)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_database_bytes',
    help: 'Size of the database file (pages in use and free).',
    registers: [registry],
    async collect () {
      this.set(await app.outbox.sizeBytes())
    }
  })
  app.decorate('metrics', metrics)
}, { name: 'storehook-metrics', dependencies: ['storehook-outbox'], fastify: '5.x' })
