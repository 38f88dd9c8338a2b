import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { ingestFromConfig, type Ingest } from './ingest.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: Ingest
  }
}

const ENVIRONMENTS = new Set(['Production', 'Sandbox', 'Xcode', 'LocalTesting'])

export default fp<{ config: Config }>(async (app, { config }) => {
  app.decorate('ingest', ingestFromConfig(config, {
    outbox: app.outbox,
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
