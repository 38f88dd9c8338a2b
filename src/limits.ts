// What one client may hold of the listener: how long it may take to send a
// request, how long an idle connection stays open, how many sockets are open
// at once. The URL is public by design, so a sender that trickles its bytes or
// opens connections and sends nothing must cost a bounded amount, for a
// bounded time, on the same server that answers Apple, /admin and /metrics.
import type { ServerOptions } from 'node:http'
import type { Server, Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { ConnectionLimits } from './config.ts'
import { errorTable, type ErrorCode } from './errors.ts'

// Node enforces headersTimeout and requestTimeout from a timer that runs every
// connectionsCheckingInterval (30 s by default), not per socket: with the
// default, a 30 s request timeout cut a trickling body anywhere from 30 s to
// 60 s, and the 60 s headers timeout left idle connections open up to 90 s.
// A tenth of the shorter timeout, at most 1 s, keeps the cut within 10 % of
// what is configured; each tick walks only the connections mid-request.
export function checkingIntervalMs (limits: ConnectionLimits): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10)))
}

// Options for http.createServer / https.createServer. They are given at
// construction because connectionsCheckingInterval is only an option there
// (Fastify passes `http` to http.createServer and `https` to https.createServer),
// and because Node checks at construction that headers fit in the request.
export function nodeServerOptions (limits: ConnectionLimits): Pick<ServerOptions, 'requestTimeout' | 'headersTimeout' | 'keepAliveTimeout' | 'connectionsCheckingInterval'> {
  return {
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: checkingIntervalMs(limits)
  }
}

// A property, not a constructor option. Over the cap, Node closes each new
// socket as it is accepted, before a byte is read: no answer is possible, the
// client sees the connection closed (behind Fly, Fly answers 502 and Apple
// retries later). The ones already open keep being served.
export function capConnections (server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections
}

const CLIENT_ERRORS: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE'
}

// Fastify's clientErrorHandler: what a client gets when Node gives up on its
// request before a route sees it (a timeout, headers that do not parse). The
// answer has storehook's `{error, code}` shape, as every other refusal, and
// closes the connection. Node's own rule is kept: nothing is written once an
// answer on this socket has begun, since bytes after it would corrupt it.
export function answerClientError (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const code: ErrorCode = CLIENT_ERRORS[err.code ?? ''] ?? 'BAD_REQUEST'
  const { status, message } = errorTable[code]
  // One line per refused client at debug: a flood of slow senders must not
  // turn into a flood of log lines.
  this.log.debug({ code, status, remoteAddress: socket.remoteAddress, err: err.code }, 'Client error before routing.')
  const answer = (socket as Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage
  if (socket.writable && (answer == null || !answer.headersSent)) {
    const body = JSON.stringify({ error: message, code })
    socket.write(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

function statusText (status: number): string {
  return status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'
}
