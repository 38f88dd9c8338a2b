// /healthz: the process answers. /readyz: the database is migrated and a
// write reaches the disk right now (Fly and load balancers route on it).
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { acceptsUnauthenticatedV1, UNAUTHENTICATED_V1_WARNING } from '../ingest/policy.ts'

export default async function healthRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  const log = app.log.child({ component: 'health' })
  const okSchema = { response: { 200: { type: 'object', properties: { status: { type: 'string' }, detail: { type: 'string' } } } } }
  // Ready all the same (routing traffic away would lose notifications), but
  // whoever checks readiness sees that the operator opted out of a check.
  const detail = acceptsUnauthenticatedV1(config) ? { detail: UNAUTHENTICATED_V1_WARNING } : {}

  app.get('/healthz', { schema: okSchema }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: okSchema }, async () => {
    const pending = app.database.pendingMigrations()
    if (pending > 0) throw new AppError('NOT_READY', `${pending} database migration(s) not applied.`)
    try {
      await app.outbox.probe()
    } catch (err) {
      log.warn({ err }, 'Readiness probe could not write to the database.')
      throw new AppError('NOT_READY', 'The database is not writable.')
    }
    return { status: 'ready', ...detail }
  })
}
