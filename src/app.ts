// The root plugin. Tests register it exactly as production does: first the
// infrastructure (database, outbox), then the domain (delivery, ingest), then
// the routes.
import type { Server } from 'node:http'
import fp from 'fastify-plugin'
import { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { Config } from './config.ts'
import deliveryPlugin from './delivery/plugin.ts'
import { answerFrameworkError, answerFromErrorTable } from './errors.ts'
import { answerClientError, nodeServerOptions } from './limits.ts'
import ingestPlugin from './ingest/plugin.ts'
import catchUpPlugin from './catchup/plugin.ts'
import outboxPlugin from './outbox/plugin.ts'
import metricsPlugin from './metrics/plugin.ts'
import alertsPlugin from './alerts/plugin.ts'
import adminGuard from './routes/admin-guard.ts'
import adminRoutes from './routes/admin.ts'
import dashboardRoutes from './dashboard/routes.ts'
import healthRoutes from './routes/health.ts'
import metricsRoutes from './routes/metrics.ts'
import notificationRoutes from './routes/notifications.ts'
import schemaRoutes from './routes/schemas.ts'

export interface AppOptions {
  config: Config
}

export function serverOptions (config: Config, logger: FastifyBaseLogger): FastifyHttpOptions<Server, FastifyBaseLogger> {
  return {
    loggerInstance: logger,
    // One line per notification comes from the ingest itself; per-request
    // lines would double the log volume and halve the throughput.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // Slow senders must not hold a connection for Node's default five minutes
    // (src/limits.ts). Fastify sets these two on the server after creating
    // it; the `http` options give them, and the interval that enforces them,
    // to http.createServer itself (buildApp does the same for HTTPS).
    requestTimeout: config.connections.requestTimeoutMs,
    keepAliveTimeout: config.connections.keepAliveTimeoutMs,
    http: nodeServerOptions(config.connections),
    clientErrorHandler: answerClientError,
    // Routing errors (undecodable URL, overlong parameter) skip the error
    // handler: without this they answer in Fastify's shape, echoing the path.
    frameworkErrors: answerFrameworkError,
    return503OnClosing: true,
    // Start-up applies migrations, and a new index on a large outbox takes
    // longer than Fastify's default 10 s per plugin (so does a worker thread
    // on a loaded machine); a slow start must not be mistaken for a hang.
    pluginTimeout: 120_000
  }
}

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  answerFromErrorTable(fastify)

  await fastify.register(outboxPlugin, { config: opts.config })
  await fastify.register(metricsPlugin)
  await fastify.register(deliveryPlugin, { config: opts.config })
  await fastify.register(ingestPlugin, { config: opts.config })
  // Issue 6: catch up from Apple's notification history (needs the ingest).
  await fastify.register(catchUpPlugin, { config: opts.config })
  // Issue 17: tell the operator (reads what the parts above write).
  await fastify.register(alertsPlugin, { config: opts.config })
  await fastify.register(healthRoutes, { config: opts.config })
  await fastify.register(metricsRoutes, { config: opts.config })
  await fastify.register(notificationRoutes, { config: opts.config })
  // Issue 18: the JSON Schema of the decoded document.
  await fastify.register(schemaRoutes)
  // The admin token's gate, shared by the API and the dashboard's login.
  await fastify.register(adminGuard, { config: opts.config })
  await fastify.register(adminRoutes, { config: opts.config, prefix: '/admin' })
  await fastify.register(dashboardRoutes, { config: opts.config, prefix: '/admin' })
}

// Not encapsulated: the decorators (outbox, delivery, ingest) are
// visible on the instance that registered the app, as tests and the CLI need.
export default fp(app, { name: 'storehook', fastify: '5.x' })
