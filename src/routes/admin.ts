// The admin JSON API (SPEC.md): what happened to any notification, and the
// one action that puts it right (replay). Behind ADMIN_TOKEN; without a
// token configured, /admin does not exist (404).
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { bearerToken } from '../secrets.ts'
import { notificationOrNotFound } from '../ops/notifications.ts'
import { quarantinePage } from '../ops/quarantine.ts'
import { replayMatching, replayOne } from '../ops/replay.ts'
import { targetsWithHealth, unknownTargets } from '../ops/targets.ts'
import type { NotificationFilter } from '../outbox/engine.ts'
import type { ApiEnvironment } from '../appstore/client.ts'
import { API_ENVIRONMENTS, DELIVERY_STATUSES, VERIFICATION_STATUSES } from '../db/vocabulary.ts'
import { catchUpState, runTestNotification, testNotificationClient } from '../appstore/operator.ts'

interface ListQuery extends NotificationFilter {
  limit?: number
  cursor?: string
}

const filterProperties = {
  type: { type: 'string', maxLength: 100 },
  subtype: { type: 'string', maxLength: 100 },
  environment: { type: 'string', maxLength: 40 },
  bundleId: { type: 'string', maxLength: 200 },
  originalTransactionId: { type: 'string', maxLength: 100 },
  verification: { type: 'string', enum: VERIFICATION_STATUSES },
  deliveryStatus: { type: 'string', enum: DELIVERY_STATUSES },
  target: { type: 'string', maxLength: 100 },
  since: { type: 'integer', minimum: 0 },
  until: { type: 'integer', minimum: 0 }
} as const

export default async function adminRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  if (config.adminToken === null) return
  const targetNames = config.targets.map((t) => t.name)

  function checkTargets (wanted: readonly string[] | undefined): void {
    const unknown = unknownTargets(targetNames, wanted)
    if (unknown.length > 0) throw new AppError('BAD_REQUEST', `Unknown target(s): ${unknown.join(', ')}. Configured: ${targetNames.join(', ') || 'none'}.`)
  }

  // Answers carry whole notifications: no browser or proxy may keep them.
  // First, so that refusals carry it too.
  app.addHook('onRequest', async (_request, reply) => { void reply.header('cache-control', 'no-store') })
  app.addHook('onRequest', async (request, reply) => {
    // Quiet: the guard logs wrong tokens in aggregate, not one line each.
    if (!await app.adminGuard.admit(request, reply, bearerToken(request.headers.authorization))) throw new AppError('UNAUTHORIZED', undefined, { quiet: true })
  })

  app.get<{ Querystring: ListQuery }>('/api/notifications', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...filterProperties, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, cursor: { type: 'string', maxLength: 64 } }
      }
    }
  }, async (request) => {
    const { limit = 50, cursor, ...filter } = request.query
    return await app.outbox.listNotifications(filter, limit, cursor ?? null)
  })

  app.get<{ Params: { id: string } }>('/api/notifications/:id', async (request) => {
    const found = await notificationOrNotFound(app.outbox, request.params.id)
    return { ...found.notification, payload: found.payload, payloadError: found.payloadError, body: found.body, deliveries: found.deliveries }
  })

  app.post<{ Params: { id: string }; Body: { targets?: string[] } | undefined }>('/api/notifications/:id/replay', {
    schema: {
      body: {
        type: ['object', 'null'],
        additionalProperties: false,
        properties: { targets: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 } }
      }
    }
  }, async (request) => {
    const wanted = request.body?.targets
    checkTargets(wanted)
    const replayed = await replayOne(app.outbox, request.params.id, wanted)
    request.log.info({ notificationId: request.params.id, targets: replayed }, 'Replay requested.')
    return { id: request.params.id, replayed }
  })

  app.post<{ Body: { filter?: NotificationFilter; targets?: string[] } }>('/api/replay', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['filter'],
        properties: {
          filter: { type: 'object', additionalProperties: false, properties: filterProperties, minProperties: 1 },
          targets: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 }
        }
      }
    }
  }, async (request) => {
    const { filter = {}, targets } = request.body
    checkTargets(targets)
    const result = await replayMatching(app.outbox, filter, targets)
    request.log.info({ filter, targets, ...result }, 'Bulk replay requested.')
    return result
  })

  app.get<{ Querystring: { limit?: number; cursor?: number } }>('/api/quarantine', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, cursor: { type: 'integer', minimum: 1 } }
      }
    }
  }, async (request) => {
    const { limit = 50, cursor } = request.query
    const { size, items, nextCursor } = await quarantinePage(app.outbox, limit, cursor ?? null)
    return { ...size, items, nextCursor }
  })

  app.post<{ Params: { id: number }; Body: { force?: boolean } | undefined }>('/api/quarantine/:id/release', {
    schema: {
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
      body: { type: ['object', 'null'], additionalProperties: false, properties: { force: { type: 'boolean' } } }
    }
  }, async (request) => {
    // The same path as `storehook quarantine release`: the payload goes
    // through today's checks (a 403 if it still fails them, unless forced).
    const force = request.body?.force === true
    const accepted = await app.ingest.release(request.params.id, { force })
    request.log.info({ quarantineId: request.params.id, notificationId: accepted.id, force }, 'Quarantine release requested.')
    return { quarantineId: request.params.id, ...accepted }
  })

  app.get('/api/targets', async () => ({ targets: await targetsWithHealth(app.outbox, config.targets, Date.now()) }))

  // ---- Issue 6: catch-up state and the test notification (the dashboard's Apple page shows the same, src/appstore/operator.ts) ----

  app.get('/api/catch-up', async () => catchUpState(config, app.outbox, app.catchUp?.running ?? false))

  app.post<{ Body: { environment?: ApiEnvironment; bundleId?: string } | undefined }>('/api/test-notification', {
    schema: {
      body: {
        type: ['object', 'null'],
        additionalProperties: false,
        properties: { environment: { type: 'string', enum: API_ENVIRONMENTS }, bundleId: { type: 'string', maxLength: 200 } }
      }
    }
  }, async (request) => {
    const environment = request.body?.environment ?? 'Sandbox'
    const report = await runTestNotification(testNotificationClient(config, environment, request.body?.bundleId), app.outbox)
    request.log.info({ environment, bundleId: report.bundleId, outcome: report.outcome }, 'Test notification checked.')
    return report
  })
}
