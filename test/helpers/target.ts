// A real HTTP target on 127.0.0.1 that records every request it gets and
// answers as the test tells it to.
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  at: number
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export type Responder = (req: Received, n: number, res: ServerResponse) => void | Promise<void>

export interface Target {
  url: string
  received: Received[]
  respond: (fn: Responder) => void
  waitFor: (count: number, timeoutMs?: number) => Promise<Received[]>
  close: () => Promise<void>
}

export const ok: Responder = (_req, _n, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}') }

export async function startTarget (responder: Responder = ok, path = '/hook', port = 0): Promise<Target> {
  let respond = responder
  const received: Received[] = []
  const waiters: Array<{ count: number; resolve: () => void }> = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r: Received = { at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }
      received.push(r)
      for (const w of [...waiters]) {
        if (received.length >= w.count) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      void respond(r, received.length, res)
    })
  })
  server.keepAliveTimeout = 1000
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const bound = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${bound}${path}`,
    received,
    respond: (fn) => { respond = fn },
    waitFor (count, timeoutMs = 10_000) {
      if (received.length >= count) return Promise.resolve(received)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`target got ${received.length} of ${count} requests in ${timeoutMs} ms`)), timeoutMs)
        waiters.push({ count, resolve: () => { clearTimeout(timer); resolve(received) } })
      })
    },
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
}
