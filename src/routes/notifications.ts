// POST /apple/notifications: the URL pasted into App Store Connect.
import { BlockList, isIP } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { clientAddress } from './client-address.ts'

export default async function notificationRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  // The body is kept as the exact bytes received: they are what every target
  // gets. Parsing happens once, in the decoder, not in Fastify's JSON parser.
  // This plugin is encapsulated, so the admin API keeps the default parser.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => {
    done(null, body)
  })

  const allowed = sourceFilter(config)
  if (allowed !== null) {
    app.addHook('onRequest', async (request) => {
      const address = clientAddress(request, config.trustProxy)
      if (address === null || !allowed(address)) {
        request.log.warn({ address, component: 'ingest' }, 'Refused a sender outside ALLOWED_SOURCE_IPS.')
        throw new AppError('SOURCE_NOT_ALLOWED', `Sender ${address ?? 'unknown'} is not in ALLOWED_SOURCE_IPS.`)
      }
    })
  }

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

function sourceFilter (config: Config): ((address: string) => boolean) | null {
  if (config.allowedSourceIps === null) return null
  const list = new BlockList()
  for (const c of config.allowedSourceIps) list.addSubnet(c.address, c.prefix, c.family)
  return (address) => list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')
}
