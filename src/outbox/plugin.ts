import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import type { Storage } from './engine.ts'
import { openStorage } from './open-storage.ts'
import { Compaction } from './compaction.ts'
import { Retention } from './retention.ts'

declare module 'fastify' {
  interface FastifyInstance {
    // The storage every other part uses; which engine it is stays here.
    outbox: Storage
  }
}

// Opens the storage (open-storage.ts chooses the engine) and applies pending
// migrations before anything else starts, then serves every read and write
// through it. On close, everything asked for is committed and its
// connections close.
export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'outbox' })
  const { outbox } = await openStorage(config, {
    busyTimeoutMs: config.databaseBusyTimeoutMs,
    // The reads are occasional lookups by index: a small page cache will do,
    // and keeps the process under 200 MB with a large outbox.
    cacheKb: 8192,
    onCrash: (err) => { log.error({ err }, 'The outbox writer stopped; it restarts with the next write.') },
    log
  })
  const retention = new Retention({ outbox, retentionMs: config.retentionMs, intervalMs: 600_000, log })
  const compaction = new Compaction({ outbox, log })
  app.addHook('onReady', async () => {
    retention.start()
    compaction.start()
  })
  app.addHook('onClose', async () => {
    await compaction.stop()
    await retention.stop()
    await outbox.close()
  })
  try {
    const reclaimed = await outbox.reclaimLeases()
    if (reclaimed > 0) log.warn({ reclaimed }, 'Reclaimed leases left by a process that stopped mid-delivery.')
  } catch (err) {
    await outbox.close()
    throw err
  }
  app.decorate('outbox', outbox)
}, { name: 'storehook-outbox', fastify: '5.x' })
