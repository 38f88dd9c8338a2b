// Starts the process: configuration, logger, the app, the listener, and a
// graceful close on SIGTERM/SIGINT (Fly sends SIGINT).
import { createSecureContext } from 'node:tls'
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import app, { serverOptions } from './app.ts'
import { ConfigError, type Config } from './config.ts'
import { capConnections, nodeServerOptions } from './limits.ts'
import { exposureWarnings } from './ingest/policy.ts'
import { readTlsPair, secureContextOptions, watchCertificate } from './tls.ts'
import { VERSION } from './version.ts'
import { storageName } from './outbox/open-storage.ts'

export function createLogger (config: Pick<Config, 'logLevel'>): Logger {
  // Asynchronous stdout: under load, lines written while a write is under way
  // go out together in the next one, instead of a syscall per line on the
  // thread that answers Apple. pino flushes what is pending when the process
  // exits; a SIGKILL can lose the last few lines, never a notification (the
  // outbox, not the log, is the record).
  return pino({ level: config.logLevel, base: { service: 'storehook' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }))
}

export async function buildApp (config: Config, logger: Logger): Promise<FastifyInstance> {
  const options = serverOptions(config, logger as FastifyBaseLogger)
  if (config.tls === null) {
    const fastify = Fastify(options)
    capConnections(fastify.server, config.connections)
    return await withApp(fastify, config)
  }
  const tls = config.tls
  const pair = readTlsPair(tls)
  try {
    createSecureContext(secureContextOptions(pair))
  } catch (err) {
    // Not PEM, or a key that is not the certificate's: one line at start, not a stack trace.
    throw new ConfigError('TLS_CERT_PATH', `${tls.certPath} and TLS_KEY_PATH ${tls.keyPath} do not load as a certificate and its key: ${(err as Error).message}`)
  }
  // The routes never look at the transport, so the HTTPS instance is typed as the HTTP one.
  // Fastify hands `https` alone to https.createServer (never `http`), so the
  // timeouts and their checking interval go there too.
  const https = { ...secureContextOptions(pair), ...nodeServerOptions(config.connections) }
  const fastify = Fastify({ ...options, https } as unknown as typeof options) as unknown as FastifyInstance
  capConnections(fastify.server, config.connections)
  const stopWatching = watchCertificate(fastify.server as unknown as Parameters<typeof watchCertificate>[0], tls, pair, logger.child({ component: 'tls' }))
  fastify.addHook('onClose', async () => { stopWatching() })
  return await withApp(fastify, config)
}

// A plugin that fails to start (a root certificate file that does not load)
// closes what the ones before it opened: the outbox's writer thread would
// otherwise keep the process alive after it said why it cannot start.
async function withApp (fastify: FastifyInstance, config: Config): Promise<FastifyInstance> {
  try {
    await fastify.register(app, { config })
  } catch (err) {
    await fastify.close().catch(() => {})
    throw err
  }
  return fastify
}

// How long close-with-grace waits past SHUTDOWN_TIMEOUT_MS before it gives up and exits.
export const GRACE_MARGIN_MS = 5_000
// Fly sends SIGINT, systemd and Docker SIGTERM.
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const
// Every signal close-with-grace would bind by default.
const LIBRARY_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'SIGTERM'] as const

export interface RunningServer {
  app: FastifyInstance
  close: () => Promise<void>
}

export async function startServer (config: Config): Promise<RunningServer> {
  const logger = createLogger(config)
  const fastify = await buildApp(config, logger)
  try {
    await fastify.listen({ port: config.port, host: config.host })
  } catch (err) {
    // A plugin that failed to start, or a port already taken: close what did
    // start (the outbox's writer thread would otherwise keep the process alive).
    await fastify.close().catch(() => {})
    throw err
  }
  const warnings = exposureWarnings(config)
  logger.info({
    version: VERSION,
    database: storageName(config),
    targets: config.targets.map((t) => t.name),
    verify: config.verify,
    // The ingest warned at start; repeated here, on the line people look for.
    ...(warnings.length > 0 ? { warnings } : {})
  }, 'storehook is serving.')
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= fastify.close()
    return closing
  }
  // The grace delay outlasts the delivery deadline, so in-flight work is
  // finished or released before close-with-grace gives up and exits. It
  // handles uncaught errors; the stop signals are handled below instead,
  // because Deno also hands a signal to listeners added while that signal is
  // being dispatched, so the library's "a second signal exits" listener would
  // fire on the first and turn every clean SIGTERM into exit code 1.
  // SIGILL, SIGFPE and SIGSEGV are faults, not requests to stop: no JavaScript
  // can run a graceful close after one (and Deno refuses to bind them).
  const grace = closeWithGrace({ delay: config.shutdownTimeoutMs + GRACE_MARGIN_MS, logger, skip: [...LIBRARY_SIGNALS] }, async ({ err }) => {
    if (err !== undefined) logger.fatal({ err }, 'Uncaught error; shutting down.')
    await close()
  })
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.error({ signal }, 'Second signal; exiting now.')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'Shutting down.')
    void grace.close()
  }
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal)
  return { app: fastify, close }
}
