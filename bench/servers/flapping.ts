// A target that flaps: it answers 200, then 500, then refuses connections
// (stops listening), each phase FLAP_MS long, round and round. Counts what it
// accepted with a 200 (answers "count" on IPC, as target.ts does).
import { createServer, type Socket } from 'node:net'
import { createServer as createHttpServer } from 'node:http'

const phaseMs = Number(process.env.FLAP_MS ?? 2000)
let count = 0
let bytes = 0
let phase: 'ok' | 'error' | 'down' = 'ok'
const sockets = new Set<Socket>()
const server = createHttpServer((req, res) => {
  req.on('data', (c: Buffer) => { bytes += c.length })
  req.on('end', () => {
    if (phase === 'ok') {
      count++
      res.writeHead(200).end('{}')
    } else res.writeHead(500).end('flapping')
  })
})
server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
server.keepAliveTimeout = 60_000

// Reserve the port once so the "down" phase can give it up and take it back.
const probe = createServer().listen(0, '127.0.0.1', () => {
  const address = probe.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  probe.close(() => {
    server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${port}\n`) })
    setInterval(() => {
      if (phase === 'ok') phase = 'error'
      else if (phase === 'error') {
        phase = 'down'
        server.close()
        for (const s of sockets) s.destroy()
      } else {
        phase = 'ok'
        server.listen(port, '127.0.0.1')
      }
    }, phaseMs)
  })
})
process.on('message', () => { process.send?.({ count, bytes }) })
process.on('SIGTERM', () => { process.exit(0) })
