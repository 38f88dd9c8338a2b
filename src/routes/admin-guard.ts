// The one gate of the admin token, for the JSON API's bearer header and the
// dashboard's login form alike: a constant-time compare, a limit on wrong
// tokens per client address, and an aggregate log of the refusals.
//
// Why these choices (issue: the security review's finding 5, 55,000 guesses
// in 5 s):
// - Only wrong tokens count. A script with the right token may page through a
//   large outbox as fast as it likes (whoever has the token can replay
//   everything anyway), and a person who logs in many times is never locked
//   out; an attacker has nothing but wrong tokens.
// - Once an address has used up its wrong tokens, every try from it gets 429
//   until the window ends, the right token too. Were the right token let
//   through, 429 would mean "wrong" and 200 "right", and guessing would go on
//   at full speed with the limit as the oracle.
// - 10 wrong tokens per address per minute, the login form and the API
//   together (one bucket, so switching between them buys nothing). No person
//   mistypes ten times a minute, and a script with the wrong token is broken
//   either way. At 14,400 guesses a day per address, a token of 16+
//   characters is out of reach of any number of addresses.
// - The address is the one the ingest's source filter uses (TRUST_PROXY),
//   IPv6 grouped by /64 as @fastify/rate-limit does: one host owns a /64.
// - Counts live in this process's memory (@fastify/rate-limit's LRU of the
//   5,000 most recent addresses): a restart forgets them, as it forgets
//   sessions. The store never fails, and if it did, skipOnError stays off:
//   the gate closes rather than opening.
// - Not configurable: no operator gains from tuning it, and a looser setting
//   is a weaker token.
import fp from 'fastify-plugin'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { sameSecret } from '../secrets.ts'
import { clientAddress } from './client-address.ts'

export const WRONG_TOKENS_PER_WINDOW = 10
export const WINDOW_MS = 60_000
// How many addresses one summary line names (the busiest); the rest are counted.
const NAMED_ADDRESSES = 10

export interface AdminGuard {
  // Whether `presented` is the admin token. Throws RATE_LIMITED (429, with
  // Retry-After set on the reply) when this address has used up its wrong
  // tokens, before looking at the token.
  admit: (request: FastifyRequest, reply: FastifyReply, presented: string) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    adminGuard: AdminGuard
  }
}

interface Tally { wrong: number; limited: number }

// One warn line per window at most, whatever the flood: how many wrong tokens
// and refusals, from how many addresses, the busiest named.
function refusalLog (log: FastifyBaseLogger): { count: (address: string, kind: keyof Tally) => void; flush: () => void } {
  let tallies = new Map<string, Tally>()
  let timer: NodeJS.Timeout | null = null
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (tallies.size === 0) return
    const all = [...tallies]
    tallies = new Map()
    const busiest = all.sort(([, a], [, b]) => (b.wrong + b.limited) - (a.wrong + a.limited)).slice(0, NAMED_ADDRESSES)
    log.warn({
      component: 'admin',
      wrongToken: all.reduce((n, [, t]) => n + t.wrong, 0),
      rateLimited: all.reduce((n, [, t]) => n + t.limited, 0),
      addresses: all.length,
      busiest: busiest.map(([address, t]) => ({ address, ...t }))
    }, 'Admin token refused (wrong token, or too many from one address).')
  }
  return {
    count (address, kind) {
      const tally = tallies.get(address) ?? { wrong: 0, limited: 0 }
      tally[kind]++
      tallies.set(address, tally)
      // The first refusal of a quiet spell starts the window; the line comes at its end.
      timer ??= setTimeout(flush, WINDOW_MS).unref()
    },
    flush
  }
}

export default fp<{ config: Config }>(async (app, { config }) => {
  const token = config.adminToken
  if (token === null) return
  await app.register(rateLimit, { global: false })
  const keyOf = (request: FastifyRequest): string => normalizeIP(clientAddress(request, config.trustProxy) ?? request.socket.remoteAddress ?? 'unknown')
  const wrongTokens = app.createRateLimit({
    max: WRONG_TOKENS_PER_WINDOW,
    timeWindow: WINDOW_MS,
    keyGenerator: keyOf,
    skipOnError: false
  })
  const log = refusalLog(app.log)
  app.addHook('onClose', async () => { log.flush() })

  const refuse = (request: FastifyRequest, reply: FastifyReply, ttlMs: number): never => {
    log.count(keyOf(request), 'limited')
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000))
    void reply.header('retry-after', String(seconds))
    throw new AppError('RATE_LIMITED', `Too many wrong admin tokens from this address; retry in ${seconds} s.`, { quiet: true })
  }

  app.decorate('adminGuard', {
    async admit (request, reply, presented) {
      // Compared first, counted after: each wrong token is counted by itself
      // (the store's increment is atomic), so concurrent guesses cannot slip
      // past the limit between a check and a count.
      const right = sameSecret(presented, token)
      const state = await wrongTokens(request, { increment: !right })
      if (state.isAllowed) return right
      if (right ? state.remaining === 0 : state.isExceeded) refuse(request, reply, state.ttl)
      if (!right) log.count(keyOf(request), 'wrong')
      return right
    }
  } satisfies AdminGuard)
}, { name: 'storehook-admin-guard', fastify: '5.x' })
