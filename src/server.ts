// Starts the process: configuration, logger, the app, the listener, and a
// graceful close on SIGTERM/SIGINT (Fly sends SIGINT).
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import app, { serverOptions } from './app.ts'
import type { Config } from './config.ts'
import { readTlsPair, secureContextOptions, watchCertificate } from './tls.ts'
import { VERSION } from './version.ts'

export function createLogger (config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { service: 'storehook' }, timestamp: pino.stdTimeFunctions.isoTime })
}

export async function buildApp (config: Config, logger: Logger): Promise<FastifyInstance> {
  const options = serverOptions(config, logger as FastifyBaseLogger)
  if (config.tls === null) {
    const fastify = Fastify(options)
    await fastify.register(app, { config })
    return fastify
  }
  const tls = config.tls
  const pair = readTlsPair(tls)
  // The routes never look at the transport, so the HTTPS instance is typed as the HTTP one.
  const fastify = Fastify({ ...options, https: secureContextOptions(pair) } as unknown as typeof options) as unknown as FastifyInstance
  const stopWatching = watchCertificate(fastify.server as unknown as Parameters<typeof watchCertificate>[0], tls, pair, logger.child({ component: 'tls' }))
  fastify.addHook('onClose', async () => { stopWatching() })
  await fastify.register(app, { config })
  return fastify
}

export interface RunningServer {
  app: FastifyInstance
  close: () => Promise<void>
}

export async function startServer (config: Config): Promise<RunningServer> {
  const logger = createLogger(config)
  const fastify = await buildApp(config, logger)
  await fastify.listen({ port: config.port, host: config.host })
  logger.info({
    version: VERSION,
    database: config.databasePath,
    targets: config.targets.map((t) => t.name),
    verify: config.verify
  }, 'storehook is serving.')
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= fastify.close()
    return closing
  }
  // The grace delay outlasts the delivery deadline, so in-flight work is
  // finished or released before close-with-grace gives up and exits.
  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.fatal({ err }, 'Uncaught error; shutting down.')
    else logger.info({ signal }, 'Shutting down.')
    await close()
  })
  return { app: fastify, close }
}
