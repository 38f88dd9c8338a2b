// POST /apple/notifications: the URL pasted into App Store Connect.
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'

export default async function notificationRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  // The body is kept as the exact bytes received: they are what every target
  // gets. Parsing happens once, in the decoder, not in Fastify's JSON parser.
  // This plugin is encapsulated, so the admin API keeps the default parser.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => {
    done(null, body)
  })

  app.post('/apple/notifications', {
    schema: {
      headers: {
        type: 'object',
        properties: { 'content-type': { type: 'string' } }
      },
      response: {
        200: {
          type: 'object',
          properties: { id: { type: 'string' }, duplicate: { type: 'boolean' } }
        }
      }
    }
  }, async (request) => {
    const raw = request.body as Buffer | undefined
    if (raw === undefined || raw.length === 0) {
      if (request.headers['content-type'] === undefined) throw new AppError('UNSUPPORTED_MEDIA_TYPE')
      throw new AppError('BODY_EMPTY')
    }
    const accepted = await app.ingest.accept(raw, 'webhook')
    return { id: accepted.id, duplicate: accepted.duplicate }
  })
}
