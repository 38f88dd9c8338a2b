import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../config.ts'
import { createVerifier, defaultRootCertificates, loadRootCertificates } from '../apple/verify.ts'
import { createIngest, type Ingest } from './ingest.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: Ingest
  }
}

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
    log: app.log.child({ component: 'ingest' })
  }))
}, { name: 'storehook-ingest', dependencies: ['storehook-outbox'], fastify: '5.x' })
