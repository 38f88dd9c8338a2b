// /healthz: the process answers. /readyz: the database is migrated and a
// write reaches the disk right now (Fly and load balancers route on it).
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { exposureWarnings } from '../ingest/policy.ts'

const PROBE_REUSE_MS = 1000

export default async function healthRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  const log = app.log.child({ component: 'health' })
  const okSchema = { response: { 200: { type: 'object', properties: { status: { type: 'string' }, detail: { type: 'string' } } } } }
  // Ready all the same (routing traffic away would lose notifications), but
  // whoever checks readiness sees what the configuration leaves open.
  const warnings = exposureWarnings(config)
  const detail = warnings.length > 0 ? { detail: warnings.join(' ') } : {}

  app.get('/healthz', { schema: okSchema }, async () => ({ status: 'ok' }))

  // /readyz is public and a probe is a durable commit on the one writer
  // thread (a failing one may hold it for the busy timeout): concurrent
  // requests share one probe, and its verdict, success or failure, stands
  // for PROBE_REUSE_MS after it settles. So a flood costs at most one write
  // a second, and "a write reaches the disk right now" means within a second.
  let shared: { result: Promise<void>; until: number } | null = null
  const probe = (): Promise<void> => {
    if (shared !== null && Date.now() < shared.until) return shared.result
    const entry = { result: app.outbox.probe(), until: Infinity }
    const settled = (): void => { entry.until = Date.now() + PROBE_REUSE_MS }
    entry.result.then(settled, (err: unknown) => {
      settled()
      log.warn({ err }, 'Readiness probe could not write to the database.')
    })
    shared = entry
    return entry.result
  }

  app.get('/readyz', { schema: okSchema }, async () => {
    const pending = await app.outbox.pendingMigrations()
    if (pending > 0) throw new AppError('NOT_READY', `${pending} database migration(s) not applied.`)
    try {
      await probe()
    } catch {
      throw new AppError('NOT_READY', 'The database is not writable.')
    }
    return { status: 'ready', ...detail }
  })
}
