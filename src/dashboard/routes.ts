// The dashboard at /admin, for people: server-rendered pages over the same
// operations as the JSON API (src/ops/, src/routes/admin.ts), behind a login
// form and a session cookie instead of a bearer token. Without ADMIN_TOKEN it
// does not exist (404), like the API. This plugin owns what every page
// shares (security headers, the session, CSRF, the error page, the login);
// the pages themselves are in pages/, registered in menu order below.
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { AppError, describeError, logRefusal } from '../errors.ts'
import { exposureWarnings } from '../ingest/policy.ts'
import { CSS, JS } from './assets.ts'
import { formSchema, page, type Dashboard, type Form } from './page.ts'
import { alertPages } from './pages/alerts.ts'
import { applePages } from './pages/apple.ts'
import { deadPages } from './pages/dead.ts'
import { notificationPages } from './pages/notifications.ts'
import { overviewPages } from './pages/overview.ts'
import { quarantinePages } from './pages/quarantine.ts'
import { createSessions, readCookie, SESSION_COOKIE, SESSION_TTL_MS, sessionCookie, type Session } from './session.ts'
import { errorPage, loginPage, type PageContext } from './views.ts'

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

export default async function dashboardRoutes (app: FastifyInstance, { config }: { config: Config }): Promise<void> {
  if (config.adminToken === null) return
  const sessions = createSessions()
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

  async function context (request: FastifyRequest): Promise<PageContext> {
    const session = request.dashboardSession
    const counts = session !== null ? await app.outbox.attentionCounts() : { dead: 0, quarantined: 0 }
    return { csrf: session !== null ? sessions.csrfToken(session) : null, now: Date.now(), deadCount: counts.dead, quarantineCount: counts.quarantined, warnings }
  }

  app.setErrorHandler(async (err: FastifyError | AppError, request, reply) => {
    const { status, code, message } = describeError(err)
    logRefusal(request, err, status, code)
    return page(reply, errorPage(await context(request), status, code, message), status)
  })

  app.get('/assets/dashboard.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(CSS))
  app.get('/assets/dashboard.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(JS))

  app.get('/login', async (request, reply) => {
    if (request.dashboardSession !== null) return reply.redirect('/admin', 303)
    return page(reply, loginPage(await context(request), null))
  })

  app.post<{ Body: Form }>('/login', { schema: { body: { type: 'object', properties: { token: { type: 'string', maxLength: 1000 } } } } }, async (request, reply) => {
    // A wrong token is logged by the guard, in aggregate; too many from one
    // address answer the 429 error page.
    if (!await app.adminGuard.admit(request, reply, request.body.token ?? '')) {
      return page(reply, loginPage(await context(request), 'Wrong admin token.'), 401)
    }
    const { cookie } = sessions.issue(Date.now())
    request.log.info({ component: 'dashboard' }, 'Dashboard login.')
    return reply.header('set-cookie', sessionCookie(cookie, SESSION_TTL_MS / 1000, overHttps(request))).redirect('/admin', 303)
  })

  app.post('/logout', { schema: { body: formSchema({}) } }, async (request, reply) => {
    sessions.revoke(request.dashboardSession!)
    return reply.header('set-cookie', sessionCookie('', 0, overHttps(request))).redirect('/admin/login', 303)
  })

  const dashboard: Dashboard = { config, targetNames: config.targets.map((t) => t.name), store: app.outbox, context }
  overviewPages(app, dashboard)
  notificationPages(app, dashboard)
  deadPages(app, dashboard)
  quarantinePages(app, dashboard)
  applePages(app, dashboard)
  alertPages(app, dashboard)
}
