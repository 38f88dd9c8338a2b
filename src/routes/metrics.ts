// GET /metrics: Prometheus text format. Public by default, as before; the
// scrape names targets and counts traffic, so an operator can close it:
// - METRICS_TOKEN: /metrics asks for `Authorization: Bearer <token>`.
// - METRICS_PORT: /metrics moves to a second listener that serves nothing
//   else, on a port the public service does not expose. Fly's scraper
//   (fly.toml [metrics]) reaches it over the private network, and it cannot
//   send a token, which is why a port and not only a token.
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { bearerMatches } from '../secrets.ts'
import { AppError, answerFromErrorTable } from '../errors.ts'
import { answerClientError, capConnections, nodeServerOptions } from '../limits.ts'

function route (on: FastifyInstance, app: FastifyInstance, token: string | null): void {
  on.get('/metrics', {
    onRequest: async (request: FastifyRequest) => {
      if (token !== null && !bearerMatches(request.headers.authorization, token)) throw new AppError('UNAUTHORIZED')
    }
  }, async (_request, reply) => {
    const text = await app.metrics.registry.metrics()
    return reply.type(app.metrics.registry.contentType).send(text)
  })
}

export default async function metricsRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  if (config.metricsPort === null) {
    route(app, app, config.metricsToken)
    return
  }
  const port = config.metricsPort
  // The main listener's connection limits (src/limits.ts), given to
  // http.createServer itself: a requestTimeout set by Fastify afterwards is
  // not enforced on a trickling request (security review, finding 3).
  const listener = Fastify({
    loggerInstance: app.log.child({ component: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.connections.requestTimeoutMs,
    keepAliveTimeout: config.connections.keepAliveTimeoutMs,
    http: nodeServerOptions(config.connections),
    clientErrorHandler: answerClientError,
    return503OnClosing: true
  })
  capConnections(listener.server, config.connections)
  answerFromErrorTable(listener)
  route(listener, app, config.metricsToken)
  // Listening from onReady: a port already taken fails the start like the
  // main port would, and the listener closes with the app.
  app.addHook('onReady', async () => {
    await listener.listen({
      port,
      host: config.host,
      // Its own words, so nothing reading "Server listening at" for the main
      // address mistakes this one for it.
      listenTextResolver: (address) => `Metrics listening at ${address} (GET /metrics only).`
    })
  })
  app.addHook('onClose', async () => { await listener.close() })
}
