// The verifying floor: bare Fastify plus the least work any verifying relay
// must do, one ES256 check of the outer signature with a key cached per chain.
import { verify, X509Certificate, type KeyObject } from 'node:crypto'
import Fastify from 'fastify'

const keys = new Map<string, KeyObject>()
const app = Fastify({ bodyLimit: 1_048_576 })
app.post('/apple/notifications', async (request, reply) => {
  const token = (request.body as { signedPayload: string }).signedPayload
  const [header, payload, signature] = token.split('.') as [string, string, string]
  let key = keys.get(header)
  if (key === undefined) {
    const x5c = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { x5c: string[] }).x5c
    key = new X509Certificate(Buffer.from(x5c[0]!, 'base64')).publicKey
    keys.set(header, key)
  }
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))
  return ok ? { ok: true } : reply.code(403).send({ error: 'bad signature' })
})
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
