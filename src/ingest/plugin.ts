import fp from 'fastify-plugin'
import { notificationTypeLabel, OTHER, vocabularyLabel } from '../apple/vocabulary.ts'
import type { Config } from '../config.ts'
import { ingestFromConfig, type Ingest } from './ingest.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: Ingest
  }
}

export default fp<{ config: Config }>(async (app, { config }) => {
  app.decorate('ingest', ingestFromConfig(config, {
    outbox: app.outbox,
    observe: (n, verification, outcome) => {
      // Label values come from the payload, so only Apple's documented ones
      // are kept (src/apple/vocabulary.ts): no sender can grow /metrics.
      // Refused payloads (anyone can send those) say nothing worth a label.
      const trusted = outcome !== 'refused'
      app.metrics.received.inc({
        version: n.version,
        environment: trusted ? vocabularyLabel('environments', n.environment) : OTHER,
        type: trusted ? notificationTypeLabel(n.version, n.notificationType) : OTHER,
        verification,
        outcome
      })
    },
    log: app.log.child({ component: 'ingest' })
  }))
}, { name: 'storehook-ingest', dependencies: ['storehook-outbox', 'storehook-metrics'], fastify: '5.x' })
