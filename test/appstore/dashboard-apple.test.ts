// The dashboard's Apple page: the last catch-up and what it found, and the
// test-notification button, against the local mock App Store Server API.
import { sql } from 'drizzle-orm'
import t from 'tap'
import { ADMIN_TOKEN } from '../helpers/admin.ts'
import { startApp, until } from '../helpers/app.ts'
import { appleWorld } from '../helpers/apple-keys.ts'
import { get, login, postForm } from '../helpers/dashboard.ts'

t.test('the Apple page shows each app and environment\'s last catch-up with what it found', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  // Apple failed to deliver two Production notifications before storehook started.
  const missed = [pki.sign(), pki.sign()]
  for (const [i, p] of missed.entries()) api.add(p, { signedDate: Date.now() - 10_000 + i })
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '0', ADMIN_TOKEN })
  await until(async () => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE finished_at IS NOT NULL`))!.n === 2, 10_000, 'the catch-up at start')
  const { cookie } = await login(s.url)

  const page = await get(s.url, '/admin/apple', cookie)
  t.equal(page.status, 200)
  t.match(page.text, /<a href="\/admin\/apple" class="on">Apple<\/a>/, 'the page is in the navigation')
  t.match(page.text, /Automatic catch-up <span class="pill ok">on<\/span>/)
  const rows = [...page.text.matchAll(/<tr class="run">([\s\S]*?)<\/tr>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim())
  t.equal(rows.length, 2, 'one row per environment')
  const production = rows.find((r) => r.includes('Production'))!
  t.match(production, /^com\.example Production \d{4}-\d\d-\d\dT[\d:]+Z catch-up-start \d{4}-\d\d-\d\dT[\d:]+Z \d+ s ago .* to .* 1 2 2 0 0$/, 'pages 1, seen 2, new 2, already 0, refused 0')
  // The mock serves one history to both hosts: the second run finds them already had.
  t.match(rows.find((r) => r.includes('Sandbox')), / 1 2 0 2 0$/, 'pages 1, seen 2, new 0, already 2, refused 0')
  t.notMatch(page.text, /not configured/)

  const overview = await get(s.url, '/admin', cookie)
  t.match(overview.text, /<section class="card catch-up"><h2>Catch-up from Apple <span class="pill ok">on<\/span><\/h2>/, 'the overview has the catch-up too')
  t.match(overview.text, /<li>Production · com\.example: <span class="pill ok">2 new<\/span> of 2 seen, \d+ s ago<\/li>/)
  t.match(overview.text, /<li>Sandbox · com\.example: 0 new of 2 seen, \d+ s ago<\/li>/)
  t.match(overview.text, /<a href="\/admin\/apple">Last runs and the test notification →<\/a>/)
})

t.test('a catch-up that failed shows Apple\'s reason on the overview and the Apple page', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  // Both environments' first request is refused, as before the key is valid.
  api.failNext(401, 2)
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '0', ADMIN_TOKEN })
  await until(async () => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE last_error IS NOT NULL`))!.n === 2, 10_000, 'both runs failing')
  const { cookie } = await login(s.url)
  const overview = await get(s.url, '/admin', cookie)
  t.match(overview.text, /<li>Production · com\.example: <span class="error">failed \d+ s ago: App Store Server API Production answered 401 Unauthorized/)
  t.match(overview.text, /<li>Sandbox · com\.example: <span class="error">failed \d+ s ago: App Store Server API Sandbox answered 401 Unauthorized/)
  const page = await get(s.url, '/admin/apple', cookie)
  t.match(page.text, /<td class="error">App Store Server API Production answered 401 Unauthorized: the key, key ID or issuer ID is wrong[^<]*Apple also answers 401 in Production until the app has been approved/)
})

t.test('without App Store Server API keys the page says what to set, and the action is refused', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const { cookie, csrf } = await login(s.url)
  const page = await get(s.url, '/admin/apple', cookie)
  t.match(page.text, /Automatic catch-up <span class="pill bad">off<\/span>/)
  t.match(page.text, /set APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PATH and APPLE_BUNDLE_ID/)
  const overview = await get(s.url, '/admin', cookie)
  t.match(overview.text, /Catch-up from Apple <span class="pill bad">off<\/span><\/h2>\n<p class="muted">Off: the App Store Server API keys are not set/)
  t.notMatch(page.text, /action="\/admin\/apple\/test-notification"/, 'no button that cannot work')
  const refused = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  t.equal(refused.status, 404)
  t.match(refused.text, /The App Store Server API is not configured/)
})

// The POST answers at once; the result page reloads itself until the verdict.
async function verdict (url: string, location: string, cookie: string): Promise<string> {
  let text = ''
  await until(async () => {
    text = (await get(url, location, cookie)).text
    return !text.includes('data-outcome="running"')
  }, 15_000, 'the verdict')
  return text
}

t.test('the test-notification button follows the TEST to storehook and every target, or says where it stopped', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '0', ADMIN_TOKEN })
  const { cookie, csrf } = await login(s.url)
  const form = await get(s.url, '/admin/apple', cookie)
  t.match(form.text, /<form method="post" action="\/admin\/apple\/test-notification"><input type="hidden" name="_csrf"/)

  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  // The catch-up at start asks Apple too: let it finish before counting.
  await until(async () => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE finished_at IS NOT NULL`))!.n === 2, 10_000, 'the catch-up at start')
  const before = api.requests.length
  const noToken = await postForm(s.url, '/admin/apple/test-notification', { environment: 'Sandbox' }, { cookie })
  t.equal(noToken.status, 403, 'refused without the CSRF token')
  t.match(noToken.text, /CROSS_SITE_REFUSED/)
  const crossSite = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie, 'sec-fetch-site': 'cross-site' })
  t.equal(crossSite.status, 403, 'refused from another site, even with the token')
  t.equal(api.requests.length, before, 'and Apple was not asked')

  // The target holds its answer, so the check is still following the TEST.
  let answer = (): void => {}
  const answered = new Promise<void>((resolve) => { answer = resolve })
  target.respond(async (_req, _n, res) => {
    await answered
    res.writeHead(200).end()
  })
  const asked = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  t.equal(asked.status, 303, 'POST, then redirect to the result at once')
  const location = asked.headers.get('location')!
  t.match(location, /^\/admin\/apple\?test=[0-9a-f-]{36}$/)
  await target.waitFor(1)
  const running = await get(s.url, location, cookie)
  t.match(running.text, /<body data-refresh="2">/, 'the page reloads itself while the check runs')
  t.match(running.text, /data-outcome="running"><h2>Test notification, Sandbox, com\.example <span class="pill pending">asking Apple…<\/span>/)
  const twice = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  t.equal(twice.headers.get('location'), location, 'a second click follows the running check')
  t.equal(api.requests.filter((r) => r.path === '/inApps/v1/notifications/test').length, 1, 'Apple was asked once')

  answer()
  const result = await verdict(s.url, location, cookie)
  t.match(result, /<section class="card test-result" data-outcome="reached-every-target">/)
  t.match(result, /The Sandbox TEST notification for com\.example reached storehook \(notification [0-9a-f-]+\) and every target: 127\.0\.0\.1:\d+\./)
  t.match(result, /<span class="pill ok">[^<]+ SUCCESS<\/span>/, 'Apple\'s send attempt is shown')
  t.notMatch(result, /data-refresh/, 'and the page stops reloading')
  t.equal(target.received.length, 1, 'the target got the TEST')
  const asksBefore = api.requests.length
  const again = await get(s.url, location, cookie)
  t.equal(again.status, 200)
  t.equal(api.requests.length, asksBefore, 'reloading the result does not ask Apple again')

  api.deliverTestsTo(null, pki.chain, 'TLS_ISSUE')
  const lost = await verdict(s.url, (await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Production' }, { cookie })).headers.get('location')!, cookie)
  t.match(lost, /data-outcome="not-received"/)
  t.match(lost, /The Production TEST notification for com\.example never reached storehook\. Apple&#39;s attempt: TLS_ISSUE\. The TLS handshake failed/)

  api.failNext(401, 1)
  const refused = await verdict(s.url, (await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })).headers.get('location')!, cookie)
  t.match(refused, /data-outcome="apple-api-error"/)
  t.match(refused, /App Store Server API Sandbox answered 401 Unauthorized: the key, key ID or issuer ID is wrong/)

  const unknownApp = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox', bundleId: 'com.other' }, { cookie })
  t.equal(unknownApp.status, 400)
  t.match(unknownApp.text, /No App Store Server API key for bundle ID com\.other\./)

  const gone = await get(s.url, '/admin/apple?test=00000000-0000-0000-0000-000000000000', cookie)
  t.match(gone.text, /data-outcome="gone"><p class="muted">That test-notification result is no longer here/)
})

t.test('a shutdown does not wait for a test notification still being followed', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  // The delivery in flight to the silent target is let go after 100 ms.
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '0', ADMIN_TOKEN, SHUTDOWN_TIMEOUT_MS: '100' })
  const { cookie, csrf } = await login(s.url)
  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  // The target never answers: the TEST stays pending and the check keeps polling.
  target.respond(() => {})
  await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  await target.waitFor(1)
  const started = Date.now()
  await s.close()
  t.ok(Date.now() - started < 5000, `closed in ${Date.now() - started} ms, not after the check's minute`)
  t.match(s.logs.join(''), /Test notification check stopped by the shutdown\./)
})
