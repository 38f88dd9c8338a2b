// The floor: bare Fastify answering 200 to the same POSTs (it parses the JSON,
// as any receiver must, and does nothing else).
import Fastify from 'fastify'

const app = Fastify({ bodyLimit: 1_048_576 })
app.post('/apple/notifications', async () => ({ ok: true }))
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
