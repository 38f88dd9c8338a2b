// Login sessions and CSRF tokens for the dashboard. Written by hand because
// @fastify/cookie and @fastify/csrf-protection are not installed and the
// whole need is one signed cookie and one derived token.
//
// The cookie value is `sid.expires.mac`, an HMAC-SHA256 under a key drawn at
// random when the process starts. It is never the admin token, and it is not
// derived from it either: a stolen cookie gives no material to guess the
// token offline. The price is that a restart ends every session (one more
// login), which also makes logout complete: revoked ids live in memory, and so
// does the key that could have signed them.
import { createHmac, randomBytes } from 'node:crypto'
import { sameSecret } from '../secrets.ts'

export const SESSION_COOKIE = 'storehook_session'
export const SESSION_TTL_MS = 12 * 3_600_000

export interface Session {
  id: string
  expiresAt: number
}

export interface Sessions {
  issue: (now: number) => { session: Session; cookie: string }
  verify: (cookie: string | undefined, now: number) => Session | null
  revoke: (session: Session) => void
  csrfToken: (session: Session) => string
  checkCsrf: (session: Session, presented: unknown) => boolean
}

export function createSessions (key: Buffer = randomBytes(32)): Sessions {
  const mac = (text: string): string => createHmac('sha256', key).update(text).digest('base64url')
  const revoked = new Map<string, number>()

  return {
    issue (now) {
      const session = { id: randomBytes(18).toString('base64url'), expiresAt: now + SESSION_TTL_MS }
      const body = `${session.id}.${session.expiresAt}`
      return { session, cookie: `${body}.${mac(`session:${body}`)}` }
    },
    verify (cookie, now) {
      const m = /^([A-Za-z0-9_-]{24})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? '')
      if (m === null) return null
      const [, id, expires, presented] = m as unknown as [string, string, string, string]
      const expected = mac(`session:${id}.${expires}`)
      if (!sameSecret(presented, expected)) return null
      const expiresAt = Number(expires)
      if (expiresAt <= now || revoked.has(id)) return null
      return { id, expiresAt }
    },
    revoke (session) {
      const now = Date.now()
      for (const [id, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(id)
      revoked.set(session.id, session.expiresAt)
    },
    // Tied to the session: a token from another session (or none) fails.
    csrfToken: (session) => mac(`csrf:${session.id}`),
    checkCsrf (session, presented) {
      return typeof presented === 'string' && sameSecret(presented, mac(`csrf:${session.id}`))
    }
  }
}

// The Cookie header, read by hand for the one cookie the dashboard sets.
export function readCookie (header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export function sessionCookie (value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`
}
