// The dashboard end to end in a real headless Chromium (Debian's, driven by
// playwright-core), against the real built server as a child process and
// real targets on 127.0.0.1. Outside tap's include glob: `npm test` must pass
// on a machine without Chromium; .ci/run installs it and runs
// `npm run test:browser`, which builds first (the server runs from dist/).
//
//   npm run test:browser                  log in, search, open, replay, see the new attempt;
//                                         request a test notification and watch the verdict come in
//   npm run screenshot                    seed realistic data and save docs/dashboard.png
//
// Prints one line per check and ends with "browser: N passed, N failed";
// exits non-zero on any failure.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { startAppleApi } from '../helpers/apple-api.ts'
import { applePki } from '../helpers/apple-keys.ts'
import { v2Body } from '../helpers/notifications.ts'
import { spawnServer, type ServerProcess } from '../helpers/process.ts'
import { startTarget, type Responder, type Target } from '../helpers/target.ts'

const SCREENSHOT = process.argv.includes('--screenshot')
const SCREENSHOT_PATH = new URL('../../docs/dashboard.png', import.meta.url)

let passed = 0
let failed = 0
function check (ok: boolean, what: string, detail = ''): void {
  if (ok) passed++
  else failed++
  process.stdout.write(`${ok ? 'ok' : 'not ok'} ${passed + failed} - ${what}${ok || detail === '' ? '' : ` (${detail})`}\n`)
}

async function until (what: string, test: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const fail503: Responder = (_r, _n, res) => { res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream unavailable') }
const ok200: Responder = (_r, _n, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}') }

interface World {
  dir: string
  backend: Target
  revenuecat: Target
  server: ServerProcess
  post: (body: Buffer) => Promise<string>
}

async function startWorld (env: Record<string, string>): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-browser-'))
  const backend = await startTarget(ok200)
  const revenuecat = await startTarget(fail503)
  const configPath = join(dir, 'storehook.json')
  writeFileSync(configPath, JSON.stringify({ targets: [{ name: 'backend', url: backend.url }, { name: 'revenuecat', url: revenuecat.url }] }))
  const server = await spawnServer({
    ADMIN_TOKEN,
    DATABASE_PATH: join(dir, 'storehook.db'),
    STOREHOOK_CONFIG: configPath,
    RETRY_MIN_DELAY_MS: '100',
    RETRY_MAX_DELAY_MS: '300',
    POLL_INTERVAL_MS: '50',
    ...env
  })
  return {
    dir,
    backend,
    revenuecat,
    server,
    async post (body) {
      const res = await fetch(`${server.url}/apple/notifications`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      const json = await res.json() as { id: string }
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}`)
      return json.id
    }
  }
}

async function stopWorld (w: World | null): Promise<void> {
  if (w === null) return
  await w.server.kill('SIGTERM')
  await w.backend.close()
  await w.revenuecat.close()
  rmSync(w.dir, { recursive: true, force: true })
}

async function launch (): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
}

async function logIn (page: Page, url: string): Promise<void> {
  await page.goto(`${url}/admin/login`)
  await page.fill('#token', ADMIN_TOKEN)
  await Promise.all([page.waitForURL(`${url}/admin`), page.click('button[type=submit]')])
}

// Refused pages (the 401 of a wrong token, a missing favicon) log "Failed to
// load resource"; what must never appear is a CSP refusal or a script error.
function watchPolicy (page: Page): string[] {
  const violations: string[] = []
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()) })
  page.on('pageerror', (err) => violations.push(err.message))
  return violations
}

async function endToEnd (browser: Browser): Promise<void> {
  const w = await startWorld({ RETRY_GIVE_UP_AFTER_MS: '400' })
  try {
    const bundle = `com.example.browser.${randomUUID().slice(0, 8)}`
    for (const type of ['SUBSCRIBED', 'DID_RENEW']) await w.post(v2Body({ notificationType: type }))
    const id = await w.post(v2Body({ notificationType: 'REFUND', environment: 'Production', bundleId: bundle }))
    await until('the failing target to give up', async () =>
      (await api(w.server.url, `/notifications/${id}`)).json.deliveries.some((d: { target: string; status: string }) => d.target === 'revenuecat' && d.status === 'dead'))

    const context = await browser.newContext()
    const page = await context.newPage()
    const policyViolations = watchPolicy(page)

    await page.goto(`${w.server.url}/admin`)
    check(page.url() === `${w.server.url}/admin/login`, 'not logged in: the overview redirects to the login form', page.url())

    await page.fill('#token', 'not-the-admin-token-at-all')
    await page.click('button[type=submit]')
    check(await page.locator('[role=alert]').textContent() === 'Wrong admin token.', 'a wrong token is refused with a message')

    await logIn(page, w.server.url)
    check(await page.locator('h1').textContent() === 'Overview', 'the right token opens the overview')
    const cookie = (await context.cookies()).find((c) => c.name === 'storehook_session')
    check(cookie?.httpOnly === true && cookie.sameSite === 'Strict' && cookie.path === '/admin', 'the session cookie is HttpOnly, SameSite=Strict, Path=/admin', JSON.stringify(cookie))
    check(cookie !== undefined && !cookie.value.includes(ADMIN_TOKEN), 'the cookie is not the token')
    check(await page.evaluate('document.cookie') === '', 'page scripts cannot read the session cookie')

    await page.click('nav >> text=Notifications')
    await page.fill('input[name=bundleId]', bundle)
    await Promise.all([page.waitForURL(/bundleId=/), page.click('form.filters button[type=submit]')])
    const rows = page.locator('tr.row')
    check(await rows.count() === 1, 'the search by bundle ID finds exactly the one notification', String(await rows.count()))
    await Promise.all([page.waitForURL(`${w.server.url}/admin/notifications/${id}`), rows.first().locator('a').first().click()])

    const delivery = page.locator('section.delivery[data-target="revenuecat"]')
    check(await delivery.locator('.pill.dead').count() === 1, "the notification page shows the failing target's delivery as dead")
    const attemptsBefore = await delivery.locator('tr.attempt').count()
    check(attemptsBefore >= 1, `every attempt is listed (${attemptsBefore})`)
    check((await delivery.textContent() ?? '').includes('upstream unavailable'), "the target's answer is shown")

    // The target is fixed; one click puts it right.
    w.revenuecat.respond(ok200)
    await Promise.all([page.waitForURL(/done=replayed/), delivery.locator('button', { hasText: 'Replay to this target' }).click()])
    check((await page.locator('[role=status]').textContent() ?? '').includes('Replay queued to 1 target'), 'the replay is confirmed')
    // The page reloads itself while a delivery is pending (dashboard.js).
    const after = page.locator('section.delivery[data-target="revenuecat"]')
    await after.locator('.pill.delivered').waitFor({ timeout: 15_000 })
    const attemptsAfter = await after.locator('tr.attempt').count()
    check(attemptsAfter === attemptsBefore + 1, `the new attempt appears (${attemptsBefore} → ${attemptsAfter}) and the delivery is delivered`)
    check(await after.locator('tr.attempt').last().locator('.pill.ok').textContent() === '200', 'the new attempt shows HTTP 200')
    check(w.backend.received.length === 3, 'the healthy target did not get it again', String(w.backend.received.length))

    await Promise.all([page.waitForURL(`${w.server.url}/admin/login`), page.click('header button[type=submit]')])
    await page.goto(`${w.server.url}/admin/dead`)
    check(page.url() === `${w.server.url}/admin/login`, 'after logout the dashboard asks for the token again')
    check(policyViolations.length === 0, 'no Content-Security-Policy violation and no script error', policyViolations.join(' | '))
    await context.close()
  } finally {
    await stopWorld(w)
  }
}

// The button against the mock App Store Server API: the POST answers at once
// and dashboard.js reloads the result page until the verdict is in.
async function testNotification (browser: Browser): Promise<void> {
  const cleanups: Array<() => void> = []
  const apple = await startAppleApi()
  let w: World | null = null
  try {
    const pki = applePki({ teardown: (fn) => { cleanups.push(fn) } }, apple.url)
    w = await startWorld({ ...pki.env, RETRY_GIVE_UP_AFTER_MS: '400' })
    apple.deliverTestsTo(`${w.server.url}/apple/notifications`, pki.chain)
    const page = await browser.newPage()
    const policyViolations = watchPolicy(page)
    await logIn(page, w.server.url)
    await page.click('nav >> text=Apple')
    check(await page.locator('h1').textContent() === 'Apple', 'the Apple page is in the navigation')

    const result = page.locator('section.test-result')
    const verdict = page.locator('section.test-result:not([data-outcome="running"])')
    await page.selectOption('select[name=environment]', 'Sandbox')
    await Promise.all([page.waitForURL(/\/admin\/apple\?test=/), page.locator('button', { hasText: 'Request a test notification' }).click()])
    // The dead delivery takes RETRY_GIVE_UP_AFTER_MS, and the check polls every 2 s.
    check(await result.getAttribute('data-outcome') === 'running', 'the button answers at once, while the check runs')
    await verdict.waitFor({ timeout: 30_000 })
    check(await result.getAttribute('data-outcome') === 'target-failed', 'with one target down the verdict names it', String(await result.getAttribute('data-outcome')))
    check(/but target revenuecat failed with HTTP 503/.test(await result.textContent() ?? ''), 'and says how it failed')

    w.revenuecat.respond(ok200)
    await Promise.all([page.waitForURL(/\/admin\/apple\?test=/), page.locator('button', { hasText: 'Request a test notification' }).click()])
    await verdict.waitFor({ timeout: 30_000 })
    check(await result.getAttribute('data-outcome') === 'reached-every-target', 'once fixed it reached every target', String(await result.getAttribute('data-outcome')))
    check(w.backend.received.length === 2 && w.revenuecat.received.length >= 2, 'the targets got both TEST notifications')
    check(policyViolations.length === 0, 'no Content-Security-Policy violation and no script error on the Apple page', policyViolations.join(' | '))
    await page.close()
  } finally {
    await stopWorld(w)
    await apple.close()
    for (const fn of cleanups) fn()
  }
}

// Realistic data for the README: several types, two targets, one of them
// failing for the latest notifications (some dead, some still retrying).
async function screenshot (browser: Browser): Promise<void> {
  const w = await startWorld({ RETRY_GIVE_UP_AFTER_MS: '6000' })
  try {
    const kinds: Array<[string, string | undefined]> = [
      ['SUBSCRIBED', 'INITIAL_BUY'], ['DID_RENEW', undefined], ['DID_RENEW', 'BILLING_RECOVERY'], ['DID_CHANGE_RENEWAL_STATUS', 'AUTO_RENEW_DISABLED'],
      ['DID_FAIL_TO_RENEW', 'GRACE_PERIOD'], ['EXPIRED', 'VOLUNTARY'], ['REFUND', undefined], ['OFFER_REDEEMED', 'UPGRADE']
    ]
    w.revenuecat.respond(ok200)
    for (let i = 0; i < 36; i++) {
      const [type, subtype] = kinds[i % kinds.length]!
      await w.post(v2Body({ notificationType: type, subtype, environment: i % 5 === 4 ? 'Sandbox' : 'Production', bundleId: i % 3 === 2 ? 'com.example.app.pro' : 'com.example.app' }))
    }
    await w.revenuecat.waitFor(36)
    w.revenuecat.respond(fail503)
    for (const [type, subtype] of kinds.slice(0, 4)) await w.post(v2Body({ notificationType: type, subtype, environment: 'Production' }))
    await until('dead deliveries', async () => (await api(w.server.url, '/targets')).json.targets.some((t: { dead: number }) => t.dead >= 4), 20_000)
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
    await logIn(page, w.server.url)
    // Two more while it is still down: retrying, not yet dead.
    await w.post(v2Body({ notificationType: 'DID_RENEW', environment: 'Production' }))
    await w.post(v2Body({ notificationType: 'TEST', environment: 'Sandbox' }))
    await w.backend.waitFor(42)
    await until('a failed attempt of the newest', async () => (await api(w.server.url, '/targets')).json.targets.some((t: { lastErrorAt: number | null; pending: number }) => t.pending === 2))

    await page.goto(`${w.server.url}/admin`)
    await page.screenshot({ path: SCREENSHOT_PATH.pathname, fullPage: true })
    process.stdout.write(`saved ${SCREENSHOT_PATH.pathname}\n`)
    check(true, 'screenshot saved')
  } finally {
    await stopWorld(w)
  }
}

let browser: Browser | null = null
try {
  browser = await launch()
  if (SCREENSHOT) await screenshot(browser)
  else {
    await endToEnd(browser)
    await testNotification(browser)
  }
} catch (err) {
  check(false, 'the run finished', (err as Error).stack ?? String(err))
} finally {
  await browser?.close()
}
process.stdout.write(`browser: ${passed} passed, ${failed} failed\n`)
process.exitCode = failed > 0 || passed === 0 ? 1 : 0
