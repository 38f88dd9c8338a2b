import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { createIngest, type Accepted, type Source } from './ingest.ts'
import type { SignatureCheck } from './policy.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: { accept: (raw: Buffer, source: Source) => Promise<Accepted> }
  }
}

export default fp<{ config: Config; signatures: SignatureCheck | null }>(async (app, { config, signatures }) => {
  app.decorate('ingest', createIngest({
    outbox: app.outbox,
    targets: config.targets,
    policy: { mode: config.verify, bundleIds: config.bundleIds, sharedSecret: config.sharedSecret, signatures },
    log: app.log.child({ component: 'ingest' })
  }))
}, { name: 'storehook-ingest', dependencies: ['storehook-outbox'], fastify: '5.x' })
