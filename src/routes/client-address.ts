// Who sent a request, for the source filter of the ingest and the rate limit
// of the admin token. Behind Fly's proxy the socket is the proxy;
// Fly-Client-IP (or the last X-Forwarded-For entry, the one the trusted proxy
// appended) is the sender. Headers are believed only when TRUST_PROXY says a
// proxy is there: otherwise anyone could name any address.
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'

export function clientAddress (request: FastifyRequest, trust: Config['trustProxy']): string | null {
  let address: string | undefined = request.socket.remoteAddress
  if (trust === 'fly') {
    const h = request.headers['fly-client-ip']
    if (typeof h === 'string') address = h.trim()
  } else if (trust === 'forwarded') {
    const h = request.headers['x-forwarded-for']
    const last = (Array.isArray(h) ? h.join(',') : h ?? '').split(',').map((x) => x.trim()).filter(Boolean).pop()
    if (last !== undefined) address = last
  }
  if (address === undefined) return null
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7)
  return isIP(address) === 0 ? null : address
}
