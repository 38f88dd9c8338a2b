import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { Outbox } from './outbox.ts'
import { Retention } from './retention.ts'

declare module 'fastify' {
  interface FastifyInstance {
    outbox: Outbox
  }
}

// Starts the outbox's writer thread (after the database plugin has migrated
// the file) and stops it, with everything queued committed, on close.
export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'outbox' })
  const outbox = new Outbox({
    path: config.databasePath,
    busyTimeoutMs: config.databaseBusyTimeoutMs,
    onCrash: (err) => { log.error({ err }, 'The outbox writer stopped; it restarts with the next write.') }
  })
  const retention = new Retention({ outbox, retentionMs: config.retentionMs, intervalMs: 600_000, log })
  app.addHook('onReady', async () => { retention.start() })
  app.addHook('onClose', async () => {
    await retention.stop()
    await outbox.close()
  })
  const reclaimed = await outbox.reclaimLeases()
  if (reclaimed > 0) log.warn({ reclaimed }, 'Reclaimed leases left by a process that stopped mid-delivery.')
  app.decorate('outbox', outbox)
}, { name: 'storehook-outbox', dependencies: ['storehook-database'], fastify: '5.x' })
