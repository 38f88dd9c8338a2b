// A forwarding target that answers 200 at once and counts what it got.
import { createServer } from 'node:http'

let count = 0
let bytes = 0
const server = createServer((req, res) => {
  req.on('data', (c: Buffer) => { bytes += c.length })
  req.on('end', () => {
    count++
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
})
process.on('message', () => { process.send?.({ count, bytes }) })
process.on('SIGTERM', () => { server.close(); process.exit(0) })
