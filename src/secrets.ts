// The one constant-time compare of a presented secret (the admin token, the
// metrics token, the V1 shared secret, the dashboard's cookie MAC and CSRF
// token) and the bearer header the tokens come in. Neutral: ingest, routes and
// the dashboard all use it, so it belongs to none of them.
import { createHash, timingSafeEqual } from 'node:crypto'

// Hash both sides: a constant-time compare whatever the lengths (a length
// check first would tell a guesser the secret's length).
export function sameSecret (presented: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(presented), digest(expected))
}

// The token of `Authorization: Bearer <token>`, as the admin API and /metrics take it ('' when absent).
export function bearerToken (authorization: string | undefined): string {
  const header = authorization ?? ''
  return header.startsWith('Bearer ') ? header.slice(7) : ''
}

export function bearerMatches (authorization: string | undefined, expected: string): boolean {
  return sameSecret(bearerToken(authorization), expected)
}
