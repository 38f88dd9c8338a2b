import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import type { AttemptOutcome } from '../db/vocabulary.ts'
import { DecodedBodies } from './decoded-bodies.ts'
import { Dispatcher } from './dispatcher.ts'
import { TargetWorker } from './worker.ts'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

// One worker per target, and the dispatcher that hands each worker the fresh
// deliveries it has room for and wakes it for every row it must claim.
// Workers start when the app is ready and stop, within the shutdown
// deadline, before the outbox and the database close.
export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'delivery' })
  const workers = new Map<string, TargetWorker>()
  const decoded = new DecodedBodies()
  for (const target of config.targets) {
    workers.set(target.name, new TargetWorker({
      target,
      outbox: app.outbox,
      log,
      retry: config.retry,
      pollIntervalMs: config.pollIntervalMs,
      decoded,
      onOutcome: (name, outcome, verdict) => {
        app.metrics.deliveries.inc({ target: name, outcome: verdict })
        // An unsendable body made no request: no duration to count.
        if (outcome.unsendable !== true) app.metrics.deliveryDuration.observe({ target: name }, outcome.durationMs / 1000)
      },
      onExpired: (name, count) => { app.metrics.deliveries.inc({ target: name, outcome: 'dead' satisfies AttemptOutcome }, count) }
    }))
  }
  const dispatcher = new Dispatcher(app.outbox, workers)
  dispatcher.listen()
  app.decorate('dispatcher', dispatcher)
  app.addHook('onReady', async () => {
    if (workers.size === 0) log.warn('No forwarding target is configured: notifications are accepted and kept, but not forwarded. Set FORWARD_TARGETS or STOREHOOK_CONFIG.')
    for (const w of workers.values()) w.start()
  })
  app.addHook('onClose', async () => {
    dispatcher.close()
    await Promise.all([...workers.values()].map((w) => w.stop(config.shutdownTimeoutMs)))
  })
}, { name: 'storehook-delivery', dependencies: ['storehook-outbox', 'storehook-metrics'], fastify: '5.x' })
