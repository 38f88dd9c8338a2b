// Raw client sockets for tests that play a slow or an idle client. What the
// server sent and when it closed the connection are the facts such a test
// waits on; every wait is bounded.
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

export interface Client {
  socket: Socket
  openedAt: number
  // Everything the server has sent so far.
  received: () => string
  // Resolves with what was received once it matches; rejects after `ms`.
  waitFor: (match: RegExp, ms: number, what?: string) => Promise<string>
  // Resolves with the milliseconds from opening to the close; rejects after `ms`.
  closed: (ms: number, what?: string) => Promise<number>
  isClosed: () => boolean
}

export function portOf (url: string): number {
  return Number(new URL(url).port)
}

// Plain TCP, or TLS when a CA is given (the server's self-made certificate).
export function dial (port: number, ca?: string): Client {
  const socket: Socket = ca === undefined ? connect(port, '127.0.0.1') : tlsConnect({ host: '127.0.0.1', port, ca })
  const openedAt = Date.now()
  const chunks: Buffer[] = []
  let closedAt: number | null = null
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const l of [...listeners]) l() }
  socket.on('data', (c: Buffer) => { chunks.push(c); notify() })
  socket.on('close', () => { closedAt = Date.now(); notify() })
  // A reset by the server is one of the outcomes under test, not a failure.
  socket.on('error', () => {})
  const received = (): string => Buffer.concat(chunks).toString('latin1')
  const waitUntil = <T>(check: () => T | undefined, ms: number, what: string): Promise<T> => new Promise((resolve, reject) => {
    const done = (): void => {
      const v = check()
      if (v === undefined) return
      listeners.delete(done)
      clearTimeout(timer)
      resolve(v)
    }
    const timer = setTimeout(() => { listeners.delete(done); reject(new Error(`timed out after ${ms} ms waiting for ${what}; received ${JSON.stringify(received().slice(0, 300))}`)) }, ms)
    listeners.add(done)
    done()
  })
  return {
    socket,
    openedAt,
    received,
    isClosed: () => closedAt !== null,
    waitFor: (match, ms, what = String(match)) => waitUntil(() => match.test(received()) ? received() : undefined, ms, what),
    closed: (ms, what = 'the server to close the connection') => waitUntil(() => closedAt === null ? undefined : closedAt - openedAt, ms, what)
  }
}

export function postHead (contentLength: number, path = '/apple/notifications'): string {
  return `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${contentLength}\r\n\r\n`
}

export const HEALTH_REQUEST = 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'

// The client's pace, not a wait: one byte every `everyMs` until the body is
// sent or the connection is gone. Returns a function that stops it.
export function trickle (client: Client, body: Buffer, everyMs: number): () => void {
  let sent = 0
  const timer = setInterval(() => {
    if (client.isClosed() || client.socket.destroyed || sent >= body.length) {
      clearInterval(timer)
      return
    }
    client.socket.write(body.subarray(sent, sent + 1))
    sent++
  }, everyMs)
  return () => clearInterval(timer)
}
