// The published JSON Schema of the decoded document, at a stable public
// path (no secret in it: it describes Apple's fields and storehook's
// envelope), so a receiver can fetch what it validates against from the
// storehook that signs its bodies. Serialised once, at start.
import type { FastifyInstance } from 'fastify'
import { SCHEMA_PATH, schemaText } from '../decoded/schema.ts'

export default async function schemaRoutes (app: FastifyInstance): Promise<void> {
  const text = schemaText()
  app.get(SCHEMA_PATH, async (_request, reply) => reply
    .type('application/schema+json')
    // A version's schema never changes: the next one gets another path.
    .header('cache-control', 'public, max-age=86400')
    .send(text))
}
