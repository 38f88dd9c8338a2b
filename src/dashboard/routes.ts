// The dashboard at /admin, for people: server-rendered pages over the same
// reads and actions as the JSON API (src/routes/admin.ts), behind a login
// form and a session cookie instead of a bearer token. Without ADMIN_TOKEN it
// does not exist (404), like the API.
import { randomUUID } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { AppError, describeError, logRefusal } from '../errors.ts'
import { exposureWarnings } from '../ingest/policy.ts'
import { API_ENVIRONMENTS, DELIVERY_STATUSES, VERIFICATION_STATUSES, type ApiEnvironment } from '../db/vocabulary.ts'
import { API_NOT_CONFIGURED, catchUpState, runTestNotification, testNotificationClient } from '../appstore/operator.ts'
import { replayMatching } from '../ops/replay.ts'
import { parseWhen } from '../ops/when.ts'
import { attentionCounts, getNotification, hourlyCounts, listNotifications, notificationDetail, overview, targetHealth, type NotificationFilter } from '../outbox/queries.ts'
import { listQuarantine, quarantineSize } from '../outbox/store.ts'
import { CSS, JS } from './assets.ts'
import type { Html } from './html.ts'
import { createSessions, readCookie, SESSION_COOKIE, SESSION_TTL_MS, sessionCookie, type Session } from './session.ts'
import { applePage, deadPage, errorPage, FILTER_FIELDS, listPage, loginPage, notificationPage, overviewPage, quarantinePage, type FilterForm, type PageContext, KEPT_TEST_RUNS, type TestRun } from './views.ts'

declare module 'fastify' {
  interface FastifyRequest {
    dashboardSession: Session | null
  }
}

const SECURITY_HEADERS = {
  // Only this origin's stylesheet and script: no inline script or style can run.
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

// Reachable without a session: the login form and what it is styled with.
const PUBLIC = new Set(['/admin/login', '/admin/assets/dashboard.css', '/admin/assets/dashboard.js'])
const PAGE_SIZE = 50
// A Map, not an object: `?done=` comes from the URL, and an object would
// answer `__proto__`, `toString` or `valueOf` with what it inherits.
const FLASH = new Map<string, (n: number) => string>([
  ['replayed', (n) => `Replay queued to ${n} target${n === 1 ? '' : 's'}; attempts appear below as they happen.`],
  ['bulk', (n) => `Replay queued for ${n} notification${n === 1 ? '' : 's'}.`],
  ['released', () => 'Released from the quarantine into the outbox.']
])

type Form = Record<string, string | undefined>

const filterQuerySchema = {
  type: 'object',
  properties: {
    ...Object.fromEntries(FILTER_FIELDS.map((k) => [k, { type: 'string', maxLength: 200 }])),
    // '' is the form's "any".
    verification: { type: 'string', enum: ['', ...VERIFICATION_STATUSES] },
    deliveryStatus: { type: 'string', enum: ['', ...DELIVERY_STATUSES] },
    cursor: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 500 }
  }
} as const

const formSchema = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => ({
  type: 'object', required, properties: { _csrf: { type: 'string', maxLength: 100 }, ...properties }
})

export default async function dashboardRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  if (config.adminToken === null) return
  const sessions = createSessions()
  const targetNames = config.targets.map((t) => t.name)
  const db = (): typeof app.database.db => app.database.db
  const warnings = exposureWarnings(config)

  // Forms post application/x-www-form-urlencoded. @fastify/formbody is not
  // installed, and URLSearchParams is all it would do. The parser is scoped
  // to this plugin, so the ingest route still answers 415 to form bodies.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16_384 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  app.decorateRequest('dashboardSession', null)

  // A POST must come from a page of this origin. Browsers send Sec-Fetch-Site
  // (which page scripts cannot forge) on every form post: when present it
  // decides. It must, because under Referrer-Policy: no-referrer Chromium
  // sends `Origin: null` even for same-origin posts. Without it (older
  // browsers), Origin, when sent, must name this host. The CSRF token,
  // checked after the body is parsed, is required either way.
  function sameOrigin (request: FastifyRequest): boolean {
    const site = request.headers['sec-fetch-site']
    if (site !== undefined) return site === 'same-origin' || site === 'none'
    const origin = request.headers.origin
    if (origin === undefined) return true
    try {
      return new URL(origin).host === request.headers.host
    } catch {
      return false
    }
  }

  app.addHook('onRequest', async (request, reply) => {
    void reply.headers(SECURITY_HEADERS)
    // Only when the browser really came over HTTPS (a spoofed header on a plain
    // instance must not pin it). No includeSubDomains: the hosts under ours are
    // not ours to decide for.
    if (overHttps(request)) void reply.header('strict-transport-security', 'max-age=31536000')
    if (request.method === 'POST' && !sameOrigin(request)) throw new AppError('CROSS_SITE_REFUSED')
    request.dashboardSession = sessions.verify(readCookie(request.headers.cookie, SESSION_COOKIE), Date.now())
    if (request.dashboardSession !== null || PUBLIC.has(request.routeOptions.url ?? '')) return
    if (request.method === 'GET') return reply.redirect('/admin/login', 303)
    throw new AppError('UNAUTHORIZED', 'Log in first.')
  })
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST' || request.routeOptions.url === '/admin/login') return
    if (!sessions.checkCsrf(request.dashboardSession!, (request.body as Form | undefined)?._csrf)) throw new AppError('CROSS_SITE_REFUSED')
  })

  // Whether the browser reached us over HTTPS: directly (TLS_CERT_PATH) or
  // through a proxy that TRUST_PROXY says is there. Decides the Secure flag.
  function overHttps (request: FastifyRequest): boolean {
    return request.protocol === 'https' || (config.trustProxy !== 'none' && request.headers['x-forwarded-proto'] === 'https')
  }

  function context (request: FastifyRequest): PageContext {
    const session = request.dashboardSession
    const counts = session !== null ? attentionCounts(db()) : { dead: 0, quarantined: 0 }
    return { csrf: session !== null ? sessions.csrfToken(session) : null, now: Date.now(), deadCount: counts.dead, quarantineCount: counts.quarantined, warnings }
  }

  function page (reply: FastifyReply, body: Html, status = 200): FastifyReply {
    return reply.code(status).type('text/html; charset=utf-8').send(body.value)
  }

  function flashFrom (query: Form): string | null {
    const make = typeof query.done === 'string' ? FLASH.get(query.done) : undefined
    return make === undefined ? null : make(Number.parseInt(query.n ?? '0', 10) || 0)
  }

  function checkTarget (target: string | undefined): void {
    if (target !== undefined && !targetNames.includes(target)) throw new AppError('BAD_REQUEST', `Unknown target "${target}".`)
  }

  app.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    const { status, code, message } = describeError(err)
    logRefusal(request, err, status, code)
    return page(reply, errorPage(context(request), status, code, message), status)
  })

  app.get('/assets/dashboard.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(CSS))
  app.get('/assets/dashboard.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(JS))

  app.get('/login', async (request, reply) => {
    if (request.dashboardSession !== null) return reply.redirect('/admin', 303)
    return page(reply, loginPage(context(request), null))
  })

  app.post<{ Body: Form }>('/login', { schema: { body: { type: 'object', properties: { token: { type: 'string', maxLength: 1000 } } } } }, async (request, reply) => {
    // A wrong token is logged by the guard, in aggregate; too many from one
    // address answer the 429 error page.
    if (!await app.adminGuard.admit(request, reply, request.body.token ?? '')) {
      return page(reply, loginPage(context(request), 'Wrong admin token.'), 401)
    }
    const { cookie } = sessions.issue(Date.now())
    request.log.info({ component: 'dashboard' }, 'Dashboard login.')
    return reply.header('set-cookie', sessionCookie(cookie, SESSION_TTL_MS / 1000, overHttps(request))).redirect('/admin', 303)
  })

  app.post('/logout', { schema: { body: formSchema({}) } }, async (request, reply) => {
    sessions.revoke(request.dashboardSession!)
    return reply.header('set-cookie', sessionCookie('', 0, overHttps(request))).redirect('/admin/login', 303)
  })

  app.get('/', async (request, reply) => {
    const now = Date.now()
    return page(reply, overviewPage(context(request), {
      overview: overview(db(), now),
      hourly: hourlyCounts(db(), now),
      targets: config.targets.map((t) => ({ name: t.name, host: new URL(t.url).host, ...targetHealth(db(), t.name) })),
      latest: listNotifications(db(), {}, 10, null).items,
      catchUp: catchUpState(config, db(), app.catchUp?.running ?? false)
    }))
  })

  app.get<{ Querystring: FilterForm & { cursor?: string; limit?: number } }>('/notifications', { schema: { querystring: filterQuerySchema } }, async (request, reply) => {
    const { cursor, limit = PAGE_SIZE, ...form } = request.query
    const now = Date.now()
    const filter: NotificationFilter = {}
    for (const key of FILTER_FIELDS) {
      const value = form[key]?.trim()
      if (value === undefined || value === '') continue
      if (key === 'since' || key === 'until') {
        filter[key] = parseWhen(value, now) ?? (() => { throw new AppError('BAD_REQUEST', `${key}: "${value}" is neither an ISO date nor a duration such as 48h.`) })()
      } else {
        // The querystring schema admits only the vocabulary's values for
        // verification and deliveryStatus; the other fields are free text.
        (filter as Record<typeof key, string>)[key] = value
      }
    }
    const found = listNotifications(db(), filter, limit, cursor ?? null)
    const kept = Object.entries(form).filter(([, v]) => v !== '') as Array<[string, string]>
    if (limit !== PAGE_SIZE) kept.push(['limit', String(limit)])
    const next = found.nextCursor === null ? null : `/admin/notifications?${new URLSearchParams([...kept, ['cursor', found.nextCursor]]).toString()}`
    return page(reply, listPage(context(request), { form, items: found.items, nextHref: next, targets: targetNames }))
  })

  app.get<{ Params: { id: string }; Querystring: Form }>('/notifications/:id', async (request, reply) => {
    const found = notificationDetail(db(), request.params.id)
    if (found === null) throw new AppError('NOT_FOUND', `No notification ${request.params.id}.`)
    return page(reply, notificationPage(context(request), {
      ...found, targets: targetNames, flash: flashFrom(request.query)
    }))
  })

  app.post<{ Params: { id: string }; Body: Form }>('/notifications/:id/replay', {
    schema: { body: formSchema({ target: { type: 'string', maxLength: 100 } }) }
  }, async (request, reply) => {
    const { id } = request.params
    const target = request.body.target
    checkTarget(target)
    if (getNotification(db(), id) === null) throw new AppError('NOT_FOUND', `No notification ${id}.`)
    const replayed = await app.outbox.replay(id, target !== undefined ? [target] : undefined)
    request.log.info({ component: 'dashboard', notificationId: id, targets: replayed }, 'Replay requested.')
    return reply.redirect(`/admin/notifications/${encodeURIComponent(id)}?done=replayed&n=${replayed.length}`, 303)
  })

  app.get('/dead', async (request, reply) => {
    return page(reply, deadPage(context(request), {
      targets: targetNames.map((name) => ({
        name,
        dead: targetHealth(db(), name).dead,
        items: listNotifications(db(), { deliveryStatus: 'dead', target: name }, 20, null).items
      })),
      flash: flashFrom(request.query as Form)
    }))
  })

  app.post<{ Body: Form }>('/dead/replay', {
    schema: { body: formSchema({ target: { type: 'string', maxLength: 100 } }, ['target']) }
  }, async (request, reply) => {
    const target = request.body.target!
    checkTarget(target)
    const result = await replayMatching(db(), app.outbox, { deliveryStatus: 'dead', target }, [target])
    request.log.info({ component: 'dashboard', target, ...result }, 'Bulk replay of dead deliveries requested.')
    return reply.redirect(`/admin/dead?done=bulk&n=${result.notifications}`, 303)
  })

  app.get<{ Querystring: { cursor?: number } & Form }>('/quarantine', {
    schema: { querystring: { type: 'object', properties: { cursor: { type: 'integer', minimum: 1 } } } }
  }, async (request, reply) => {
    const rows = listQuarantine(db(), PAGE_SIZE + 1, request.query.cursor ?? null)
    const items = rows.slice(0, PAGE_SIZE)
    return page(reply, quarantinePage(context(request), {
      items,
      size: quarantineSize(db()),
      nextHref: rows.length > PAGE_SIZE ? `/admin/quarantine?cursor=${items[items.length - 1]!.id}` : null,
      flash: flashFrom(request.query as Form)
    }))
  })

  app.post<{ Params: { id: number }; Body: Form }>('/quarantine/:id/release', {
    schema: {
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
      body: formSchema({ force: { type: 'string', enum: ['1'] } })
    }
  }, async (request, reply) => {
    const force = request.body.force === '1'
    const accepted = await app.ingest.release(request.params.id, { force })
    request.log.info({ component: 'dashboard', quarantineId: request.params.id, notificationId: accepted.id, force }, 'Quarantine release requested.')
    return reply.redirect(`/admin/notifications/${encodeURIComponent(accepted.id)}?done=released`, 303)
  })

  // A test notification takes up to a minute (Apple's send attempt, then
  // every target), about what a reverse proxy waits for an answer before it
  // gives up (nginx and Fly: 60 s). So the POST starts the check and
  // redirects at once to a page that reloads itself until the verdict is in;
  // reloading it never asks Apple again. Runs live here, oldest first.
  const runs = new Map<string, TestRun>()
  const stopChecks = new AbortController()
  const checking = new Set<Promise<void>>()
  app.addHook('onClose', async () => {
    stopChecks.abort()
    await Promise.allSettled(checking)
  })

  app.get<{ Querystring: { test?: string } }>('/apple', {
    schema: { querystring: { type: 'object', properties: { test: { type: 'string', maxLength: 64 } } } }
  }, async (request, reply) => {
    const id = request.query.test
    return page(reply, applePage(context(request), {
      catchUp: catchUpState(config, db(), app.catchUp?.running ?? false),
      apps: config.appleApi?.apps.map((a) => a.bundleId) ?? [],
      test: id === undefined ? null : runs.get(id) ?? 'gone',
      notConfigured: API_NOT_CONFIGURED
    }))
  })

  app.post<{ Body: Form }>('/apple/test-notification', {
    schema: { body: formSchema({ environment: { type: 'string', enum: API_ENVIRONMENTS }, bundleId: { type: 'string', maxLength: 200 } }, ['environment']) }
  }, async (request, reply) => {
    const environment = request.body.environment as ApiEnvironment
    const client = testNotificationClient(config, environment, request.body.bundleId, stopChecks.signal)
    const fields = { component: 'dashboard', environment, bundleId: client.bundleId }
    // A second click while the first is still running follows that one.
    const same = [...runs].find(([, r]) => r.report === null && r.environment === environment && r.bundleId === client.bundleId)
    if (same !== undefined) return reply.redirect(`/admin/apple?test=${same[0]}`, 303)
    const id = randomUUID()
    const run: TestRun = { environment, bundleId: client.bundleId, at: Date.now(), report: null }
    runs.set(id, run)
    for (const old of runs.keys()) {
      if (runs.size <= KEPT_TEST_RUNS) break
      runs.delete(old)
    }
    const log = request.log
    log.info(fields, 'Test notification requested.')
    const check: Promise<void> = runTestNotification(client, db(), stopChecks.signal).then((report) => {
      run.report = report
      log.info({ ...fields, outcome: report.outcome }, 'Test notification checked.')
    }, (err: unknown) => {
      const stopped = stopChecks.signal.aborted
      run.report = { ok: false, outcome: 'storehook-error', message: stopped ? 'storehook stopped before the check finished.' : `storehook could not finish the check: ${(err as Error).message}` }
      if (stopped) log.info(fields, 'Test notification check stopped by the shutdown.')
      else log.error({ ...fields, err }, 'Test notification check failed.')
    }).finally(() => { checking.delete(check) })
    checking.add(check)
    return reply.redirect(`/admin/apple?test=${id}`, 303)
  })
}
