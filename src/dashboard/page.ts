// What every dashboard page is built with: the plugin (routes.ts) makes one
// Dashboard and hands it to each page module (pages/*.ts) in turn.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import type { Storage } from '../outbox/engine.ts'
import { AppError } from '../errors.ts'
import { unknownTargets } from '../ops/targets.ts'
import type { Html } from './html.ts'
import type { PageContext } from './views.ts'

export interface Dashboard {
  config: Config
  targetNames: string[]
  store: Storage
  // What the layout of every page needs: the CSRF token, the counts in the menu, the warnings.
  context: (request: FastifyRequest) => Promise<PageContext>
}

export const PAGE_SIZE = 50

export type Form = Record<string, string | undefined>

export function page (reply: FastifyReply, body: Html, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body.value)
}

export const formSchema = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => ({
  type: 'object', required, properties: { _csrf: { type: 'string', maxLength: 100 }, ...properties }
})

// A Map, not an object: `?done=` comes from the URL, and an object would
// answer `__proto__`, `toString` or `valueOf` with what it inherits.
const FLASH = new Map<string, (n: number) => string>([
  ['replayed', (n) => `Replay queued to ${n} target${n === 1 ? '' : 's'}; attempts appear below as they happen.`],
  ['bulk', (n) => `Replay queued for ${n} notification${n === 1 ? '' : 's'}.`],
  ['released', () => 'Released from the quarantine into the outbox.'],
  ['alerted', (n) => `Test alert queued to ${n} destination${n === 1 ? '' : 's'}; each one's outcome appears in the history below.`]
])

// The line a page shows after the action that redirected to it (`?done=...&n=...`).
// `n` is a count the redirect wrote: a crafted link's "-5" or "1e9" shows no
// line rather than a number storehook never said.
export function flashFrom (query: Form): string | null {
  const make = typeof query.done === 'string' ? FLASH.get(query.done) : undefined
  const n = query.n ?? '0'
  return make === undefined || typeof n !== 'string' || !/^\d{1,6}$/.test(n) ? null : make(Number(n))
}

export function checkTarget (targetNames: readonly string[], target: string | undefined): void {
  if (target !== undefined && unknownTargets(targetNames, [target]).length > 0) throw new AppError('BAD_REQUEST', `Unknown target "${target}".`)
}
