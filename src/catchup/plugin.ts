// The automatic catch-up as a resource of the server: on when App Store Server
// API keys are configured, started once the server is ready, stopped on close.
// Its state lives in history_runs; /metrics reads it from there.
import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import type { Config } from '../config.ts'
import { CatchUp } from './catch-up.ts'

declare module 'fastify' {
  interface FastifyInstance {
    // null: no App Store Server API keys, no catch-up.
    catchUp: CatchUp | null
  }
}

export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'catch-up' })
  const api = config.appleApi
  if (api === null) {
    log.info('App Store Server API keys are not set: automatic catch-up, backfill and test notifications are off.')
    app.decorate('catchUp', null)
    return
  }
  const registers = [app.metrics.registry]
  const recovered = new Counter({
    name: 'storehook_catch_up_recovered_total',
    help: 'Notifications the automatic catch-up found in Apple\'s history that storehook had not received, by environment.',
    labelNames: ['environment'],
    registers
  })
  const failures = new Counter({
    name: 'storehook_catch_up_failures_total',
    help: 'Catch-up runs that failed (Apple unreachable, key refused...), by environment.',
    labelNames: ['environment'],
    registers
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'storehook_catch_up_last_success_timestamp_seconds',
    help: 'When the last catch-up that finished without error ended, by environment.',
    labelNames: ['environment'],
    registers,
    async collect () {
      const runs = await app.outbox.lastCatchUps()
      this.reset()
      const last = new Map<string, number>()
      for (const r of runs) {
        if (r.finishedAt !== null && r.lastError === null) last.set(r.environment, Math.max(last.get(r.environment) ?? 0, r.finishedAt))
      }
      for (const [environment, at] of last) this.set({ environment }, at / 1000)
    }
  })
  const catchUp = new CatchUp({
    api,
    outbox: app.outbox,
    ingest: app.ingest,
    log,
    onRecovered: (environment) => recovered.inc({ environment }),
    onFailed: (environment) => failures.inc({ environment })
  })
  app.decorate('catchUp', catchUp)
  log.info({ apps: api.apps.map((a) => a.bundleId), intervalMs: api.catchUpIntervalMs, marginMs: api.catchUpMarginMs }, 'Automatic catch-up from Apple\'s notification history is on.')
  app.addHook('onReady', async () => { catchUp.start() })
  app.addHook('onClose', async () => { await catchUp.stop() })
}, { name: 'storehook-catch-up', dependencies: ['storehook-outbox', 'storehook-metrics', 'storehook-ingest'], fastify: '5.x' })
