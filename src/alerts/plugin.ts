// Alerts (issue 17) as a resource of the server: the monitor that opens and
// closes episodes, the sender that delivers their messages, and the test
// alert, started once the server is ready and stopped on close. State lives
// in alert_episodes and alert_messages; /metrics counts what was sent.
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import type { Config } from '../config.ts'
import { ALERT_EVENTS } from '../db/vocabulary.ts'
import { AlertMonitor, edgeOf } from './monitor.ts'
import { AlertSender } from './sender.ts'

const NOTIFICATIONS_ROUTE = '/apple/notifications'

export interface Alerts {
  monitor: AlertMonitor
  sender: AlertSender
  // Queues the test alert to every destination (the dashboard's button);
  // how many. Its outcomes are in the alert history.
  queueTest: () => Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    alerts: Alerts
  }
}

export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'alerts' })
  const counted = new Counter({
    name: 'storehook_alerts_total',
    help: `Alert attempts by event (${ALERT_EVENTS.join(', ')}) and result (sent; retry: refused, tried again later; failed: given up).`,
    labelNames: ['event', 'result'],
    registers: [app.metrics.registry]
  })
  const sender = new AlertSender({
    storage: app.outbox,
    alerts: config.alerts,
    publicUrl: config.publicUrl,
    retry: config.retry,
    intervalMs: Math.min(config.pollIntervalMs * 5, config.alerts.checkIntervalMs),
    log,
    onResult: (event, result) => counted.inc({ event, result })
  })
  const monitor = new AlertMonitor({
    storage: app.outbox,
    alerts: config.alerts,
    targets: config.targets,
    publicUrl: config.publicUrl,
    databasePath: config.databaseUrl === null ? config.databasePath : null,
    certPath: config.tls?.certPath ?? null,
    log,
    onQueued: () => { sender.wake() }
  })
  const queueTest = async (): Promise<number> => {
    const queued = await app.outbox.queueAlert(edgeOf(config.alerts, 'test', 'storehook', {}), Date.now())
    sender.wake()
    return queued.length
  }
  app.decorate('alerts', { monitor, sender, queueTest })
  const names = config.alerts.destinations.map((d) => `${d.name} (${d.format})`)
  if (names.length === 0) log.info('No alert destination (ALERT_URLS): alert episodes are kept and shown on the dashboard only.')
  else log.info({ destinations: names }, 'Alerts go to these destinations.')
  // A notification answered 503 (its write failed) is the first sign of
  // storage.failing: the monitor checks at once instead of at its interval.
  // One comparison per response; the route is the one Apple posts to.
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 503 && request.routeOptions.url === NOTIFICATIONS_ROUTE) monitor.checkSoon()
  })
  app.addHook('onReady', async () => {
    sender.start()
    monitor.start()
  })
  app.addHook('onClose', async () => {
    await monitor.stop()
    await sender.stop()
  })
}, { name: 'storehook-alerts', dependencies: ['storehook-outbox', 'storehook-metrics'], fastify: '5.x' })
