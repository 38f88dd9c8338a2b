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
  await until(() => s.app.database.db.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE finished_at IS NOT NULL`)!.n === 2, 10_000, 'the catch-up at start')
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
})

t.test('without App Store Server API keys the page says what to set, and the action is refused', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const { cookie, csrf } = await login(s.url)
  const page = await get(s.url, '/admin/apple', cookie)
  t.match(page.text, /Automatic catch-up <span class="pill bad">off<\/span>/)
  t.match(page.text, /set APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PATH and APPLE_BUNDLE_ID/)
  t.notMatch(page.text, /action="\/admin\/apple\/test-notification"/, 'no button that cannot work')
  const refused = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  t.equal(refused.status, 404)
  t.match(refused.text, /The App Store Server API is not configured/)
})

t.test('the test-notification button follows the TEST to storehook and every target, or says where it stopped', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '0', ADMIN_TOKEN })
  const { cookie, csrf } = await login(s.url)
  const form = await get(s.url, '/admin/apple', cookie)
  t.match(form.text, /<form method="post" action="\/admin\/apple\/test-notification"><input type="hidden" name="_csrf"/)

  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  const before = api.requests.length
  const noToken = await postForm(s.url, '/admin/apple/test-notification', { environment: 'Sandbox' }, { cookie })
  t.equal(noToken.status, 403, 'refused without the CSRF token')
  t.equal(api.requests.length, before, 'and Apple was not asked')

  const asked = await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })
  t.equal(asked.status, 303, 'POST, then redirect to the result')
  const location = asked.headers.get('location')!
  t.match(location, /^\/admin\/apple\?test=[0-9a-f-]{36}$/)
  const result = await get(s.url, location, cookie)
  t.match(result.text, /<section class="card test-result" data-outcome="reached-every-target">/)
  t.match(result.text, /The Sandbox TEST notification for com\.example reached storehook \(notification [0-9a-f-]+\) and every target: 127\.0\.0\.1:\d+\./)
  t.match(result.text, /<span class="pill ok">[^<]+ SUCCESS<\/span>/, 'Apple\'s send attempt is shown')
  t.equal(target.received.length, 1, 'the target got the TEST')
  const again = await get(s.url, location, cookie)
  t.equal(again.status, 200)
  t.equal(target.received.length, 1, 'reloading the result does not ask Apple again')

  api.deliverTestsTo(null, pki.chain, 'TLS_ISSUE')
  const lost = await get(s.url, (await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Production' }, { cookie })).headers.get('location')!, cookie)
  t.match(lost.text, /data-outcome="not-received"/)
  t.match(lost.text, /The Production TEST notification for com\.example never reached storehook\. Apple&#39;s attempt: TLS_ISSUE\. The TLS handshake failed/)

  api.failNext(401, 1)
  const refused = await get(s.url, (await postForm(s.url, '/admin/apple/test-notification', { _csrf: csrf, environment: 'Sandbox' }, { cookie })).headers.get('location')!, cookie)
  t.match(refused.text, /data-outcome="apple-api-error"/)
  t.match(refused.text, /401 Unauthorized/)
})
