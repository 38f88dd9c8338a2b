import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import type { ClaimedDelivery } from '../outbox/engine.ts'
import { TargetWorker } from './worker.ts'

declare module 'fastify' {
  interface FastifyInstance {
    delivery: { workers: ReadonlyMap<string, TargetWorker> }
  }
}

// A target's worker, offered each fresh delivery before it is written: one it
// reserves is written already leased and handed to it with the body in
// memory, so the happy path costs no claim. Until the delivery-side
// dispatcher asks for leases again, ingest enqueues with none.
export interface Handoff {
  // How long the lease of a handed-off delivery runs, as a claim's would.
  readonly leaseMs: number
  // Room for one more delivery right now? Every true is followed by take() or cancel().
  reserve: () => boolean
  take: (c: ClaimedDelivery, leaseEnd: number) => void
  cancel: () => void
}

// One worker per target, handed each fresh delivery it has room for, and
// woken by every commit that leaves it rows to claim. Workers start when the
// app is ready and stop, within the shutdown deadline, before the outbox and
// the database close.
export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'delivery' })
  const workers = new Map<string, TargetWorker>()
  for (const target of config.targets) {
    workers.set(target.name, new TargetWorker({
      target,
      outbox: app.outbox,
      log,
      retry: config.retry,
      pollIntervalMs: config.pollIntervalMs,
      onOutcome: (name, outcome, verdict) => {
        app.metrics.deliveries.inc({ target: name, outcome: verdict })
        app.metrics.deliveryDuration.observe({ target: name }, outcome.durationMs / 1000)
      },
      onExpired: (name, count) => { app.metrics.deliveries.inc({ target: name, outcome: 'dead' }, count) }
    }))
  }
  const unsubscribe = app.outbox.onEnqueued((targets, seenFrom) => {
    for (const name of targets) workers.get(name)?.wake(seenFrom)
  })
  app.decorate('delivery', { workers })
  app.addHook('onReady', async () => {
    if (workers.size === 0) log.warn('No forwarding target is configured: notifications are accepted and kept, but not forwarded. Set FORWARD_TARGETS or STOREHOOK_CONFIG.')
    for (const w of workers.values()) w.start()
  })
  app.addHook('onClose', async () => {
    unsubscribe()
    await Promise.all([...workers.values()].map((w) => w.stop(config.shutdownTimeoutMs)))
  })
}, { name: 'storehook-delivery', dependencies: ['storehook-outbox', 'storehook-metrics'], fastify: '5.x' })
