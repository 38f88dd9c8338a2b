// The common recipe storehook replaces: receive, POST to the target, answer
// once the target answered (Express + axios, here Fastify + undici so the
// comparison is not about the framework). Nothing is stored: if the target
// fails, the notification is answered 502 and Apple must retry it.
import Fastify from 'fastify'
import { Agent } from 'undici'

const target = new URL(process.env.TARGET_URL!)
const agent = new Agent({ connections: 128, keepAliveTimeout: 4000 })
const app = Fastify({ bodyLimit: 1_048_576 })
app.removeAllContentTypeParsers()
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
  // Parse, as any handler does (to read notificationType), but forward the bytes received.
  try { JSON.parse(body.toString()); done(null, body) } catch (err) { done(err as Error) }
})
app.post('/apple/notifications', async (request, reply) => {
  try {
    const res = await agent.request({ origin: target.origin, path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json' }, body: request.body as Buffer })
    await res.body.dump()
    return res.statusCode < 300 ? { ok: true } : reply.code(502).send({ error: 'target failed' })
  } catch {
    return reply.code(502).send({ error: 'target unreachable' })
  }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
