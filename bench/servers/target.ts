// A forwarding target that answers 200 (at once, or after DELAY_MS) and counts
// what it got. PORT fixes its port, so a backlog can wait for it by name.
import { createServer } from 'node:http'

const delayMs = Number(process.env.DELAY_MS ?? 0)
let count = 0
let bytes = 0
const server = createServer((req, res) => {
  req.on('data', (c: Buffer) => { bytes += c.length })
  req.on('end', () => {
    count++
    const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}') }
    if (delayMs > 0) setTimeout(answer, delayMs)
    else answer()
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
})
process.on('message', () => { process.send?.({ count, bytes }) })
process.on('SIGTERM', () => { server.close(); process.exit(0) })
