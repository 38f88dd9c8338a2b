import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { openMigrated, type Database_ } from './client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    database: Database_
  }
}

// Opens the database file and applies pending migrations before anything
// else starts; closes it last. This main-thread connection only reads (the
// admin API, /metrics, /readyz's migration check): the outbox's writer
// thread owns every write, and WAL lets both work at once.
export default fp<{ config: Config }>(async (app, { config }) => {
  // Its reads are occasional lookups by index: a small page cache will do,
  // and keeps the process under 200 MB with a large outbox.
  const { database } = openMigrated(config.databasePath, { busyTimeoutMs: config.databaseBusyTimeoutMs, cacheKb: 8192 })
  app.decorate('database', database)
  app.addHook('onClose', async () => { database.close() })
}, { name: 'storehook-database', fastify: '5.x' })
