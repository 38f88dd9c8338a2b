import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../config.ts'
import { createVerifier, defaultRootCertificates, loadRootCertificates } from '../apple/verify.ts'
import { createIngest, type Ingest } from './ingest.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: Ingest
  }
}

const ENVIRONMENTS = new Set(['Production', 'Sandbox', 'Xcode', 'LocalTesting'])

export default fp<{ config: Config }>(async (app, { config }) => {
  // APPLE_ROOT_CERTS replaces the bundled Apple root (tests, private CAs).
  let roots: Buffer[]
  try {
    roots = config.appleRootCerts.length > 0 ? loadRootCertificates(config.appleRootCerts) : defaultRootCertificates()
  } catch (err) {
    throw new ConfigError('APPLE_ROOT_CERTS', (err as Error).message)
  }
  const signatures = createVerifier({ roots })
  app.decorate('ingest', createIngest({
    outbox: app.outbox,
    targets: config.targets,
    policy: { mode: config.verify, bundleIds: config.bundleIds, sharedSecret: config.sharedSecret, signatures },
    quarantine: config.quarantine,
    observe: (n, verification, outcome) => {
      // Label values come from the payload: refused ones (anyone can send
      // those) and odd shapes are folded, so no sender can grow /metrics.
      const trusted = outcome !== 'refused'
      app.metrics.received.inc({
        version: n.version,
        environment: trusted && ENVIRONMENTS.has(n.environment ?? '') ? n.environment! : 'other',
        type: trusted && /^[A-Z_]{1,64}$/.test(n.notificationType) ? n.notificationType : 'OTHER',
        verification,
        outcome
      })
    },
    log: app.log.child({ component: 'ingest' })
  }))
}, { name: 'storehook-ingest', dependencies: ['storehook-outbox', 'storehook-metrics'], fastify: '5.x' })
