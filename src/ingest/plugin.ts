import fp from 'fastify-plugin'
import { notificationTypeLabel, OTHER, vocabularyLabel } from '../apple/vocabulary.ts'
import type { Config } from '../config.ts'
import { ingestFromConfig, type Ingest } from './ingest.ts'
import { acceptsUnauthenticatedV1, exposureWarnings } from './policy.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: Ingest
  }
}

export default fp<{ config: Config }>(async (app, { config }) => {
  const log = app.log.child({ component: 'ingest' })
  // Said at every start, so an opt-in left on is never forgotten.
  for (const warning of exposureWarnings(config)) log.warn(warning)
  if (config.allowUnauthenticatedV1 && !acceptsUnauthenticatedV1(config)) {
    log.info(config.sharedSecret !== null
      ? 'ALLOW_UNAUTHENTICATED_V1=true has no effect: APPLE_SHARED_SECRET is set, so V1 notifications must carry it.'
      : `ALLOW_UNAUTHENTICATED_V1=true has no effect under VERIFY_SIGNATURES=${config.verify}, which does not refuse V1 notifications.`)
  }
  app.decorate('ingest', ingestFromConfig(config, {
    outbox: app.outbox,
    dispatcher: app.dispatcher,
    observe: (n, verification, outcome) => {
      // Label values come from the payload, so only Apple's documented ones
      // are kept (src/apple/vocabulary.ts): no sender can grow /metrics.
      // Refused payloads (anyone can send those) say nothing worth a label.
      const trusted = outcome !== 'refused'
      app.metrics.received.inc({
        version: n.version,
        environment: trusted ? vocabularyLabel('environments', n.indexed.environment) : OTHER,
        type: trusted ? notificationTypeLabel(n.version, n.indexed.notificationType) : OTHER,
        verification,
        outcome
      })
    },
    log
  }))
}, { name: 'storehook-ingest', dependencies: ['storehook-outbox', 'storehook-metrics', 'storehook-delivery'], fastify: '5.x' })
