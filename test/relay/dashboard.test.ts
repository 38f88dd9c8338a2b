import t from 'tap'
import { ADMIN_TOKEN, api, enforceUntrustedRoot, untrustedNotification } from '../helpers/admin.ts'
import { startApp, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'
import { get, login, postForm } from '../helpers/dashboard.ts'
import { DELIVERY_STATUSES, VERIFICATION_STATUSES } from '../../src/db/vocabulary.ts'

t.test('without ADMIN_TOKEN there is no dashboard either', async (t) => {
  const s = await startApp(t)
  t.equal((await get(s.url, '/admin')).status, 404)
  t.equal((await get(s.url, '/admin/login')).status, 404)
  t.equal((await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN })).status, 404)
})

t.test('login: a form, a refused wrong token, an HttpOnly SameSite=Strict session cookie that is not the token, logout', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const anonymous = await get(s.url, '/admin/notifications')
  t.equal(anonymous.status, 303, 'not logged in: redirected')
  t.equal(anonymous.headers.get('location'), '/admin/login')

  const form = await get(s.url, '/admin/login')
  t.equal(form.status, 200)
  t.match(form.headers.get('content-type'), /^text\/html/)
  t.match(form.text, /<input id="token" name="token" type="password"/)
  t.match(form.headers.get('content-security-policy'), /default-src 'self'/)
  t.match(form.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.notMatch(form.headers.get('content-security-policy'), /unsafe-inline/)
  t.equal(form.headers.get('x-frame-options'), 'DENY')
  t.equal(form.headers.get('referrer-policy'), 'no-referrer')
  t.equal(form.headers.get('cache-control'), 'no-store')
  t.notMatch(form.text, /<script>|<style>| style="| on[a-z]+="/, 'no inline script or style for the CSP to block')

  const wrong = await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN + 'x' })
  t.equal(wrong.status, 401)
  t.match(wrong.text, /Wrong admin token/)
  t.equal(wrong.headers.get('set-cookie'), null, 'no session for a wrong token')
  t.equal((await postForm(s.url, '/admin/login', {})).status, 401, 'no token at all')
  t.notMatch(s.logs.join(''), ADMIN_TOKEN, 'the token never reaches the logs')

  const right = await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN })
  t.equal(right.status, 303)
  t.equal(right.headers.get('location'), '/admin')
  const setCookie = right.headers.get('set-cookie')!
  t.match(setCookie, /^storehook_session=[^;]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=43200$/, 'no Secure over plain HTTP')
  t.notMatch(setCookie, ADMIN_TOKEN, 'the cookie is not the token')
  const cookie = setCookie.split(';')[0]!
  t.equal((await get(s.url, '/admin', cookie)).status, 200)
  t.equal((await get(s.url, '/admin/login', cookie)).headers.get('location'), '/admin', 'logged in: the form sends you on')

  // A forged or altered cookie is no session.
  const [name, value] = cookie.split('=') as [string, string]
  const forged = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`
  t.equal((await get(s.url, '/admin', forged)).status, 303)
  t.equal((await get(s.url, '/admin', `${name}=${ADMIN_TOKEN}`)).status, 303, 'the token as a cookie is no session')

  const csrf = /name="_csrf" value="([^"]+)"/.exec((await get(s.url, '/admin', cookie)).text)![1]!
  t.equal((await postForm(s.url, '/admin/logout', {}, { cookie })).status, 403, 'logout needs the CSRF token too')
  const out = await postForm(s.url, '/admin/logout', { _csrf: csrf }, { cookie })
  t.equal(out.status, 303)
  t.equal(out.headers.get('location'), '/admin/login')
  t.match(out.headers.get('set-cookie'), /^storehook_session=; .*Max-Age=0/)
  t.equal((await get(s.url, '/admin', cookie)).status, 303, 'the old cookie no longer works after logout')

  t.equal((await api(s.url, '/targets', {}, null)).status, 401, 'the JSON API still wants its bearer token, not a cookie')
  const apiWithCookie = await fetch(`${s.url}/admin/api/targets`, { headers: { cookie } })
  t.equal(apiWithCookie.status, 401)
})

t.test('the cookie is Secure when the request came over HTTPS through a trusted proxy', async (t) => {
  const trusted = await startApp(t, { ADMIN_TOKEN, TRUST_PROXY: 'forwarded' })
  const viaProxy = await postForm(trusted.url, '/admin/login', { token: ADMIN_TOKEN }, { 'x-forwarded-proto': 'https' })
  t.match(viaProxy.headers.get('set-cookie'), /; Secure$/)
  const untrusted = await startApp(t, { ADMIN_TOKEN })
  const spoofed = await postForm(untrusted.url, '/admin/login', { token: ADMIN_TOKEN }, { 'x-forwarded-proto': 'https' })
  t.notMatch(spoofed.headers.get('set-cookie'), /Secure/, 'without TRUST_PROXY the header is not believed')
})

t.test('state-changing forms are refused without the session CSRF token or from another origin', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { ADMIN_TOKEN, FORWARD_TARGETS: target.url })
  const id = (await s.post(v2Body())).json.id
  await target.waitFor(1)
  const me = await login(s.url)
  const other = await login(s.url)
  t.not(me.csrf, other.csrf, 'each session has its own token')
  const replay = `/admin/notifications/${id}/replay`

  const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
    ['no CSRF token', {}, { cookie: me.cookie }],
    ['a wrong CSRF token', { _csrf: 'x'.repeat(43) }, { cookie: me.cookie }],
    ["another session's CSRF token", { _csrf: other.csrf }, { cookie: me.cookie }],
    ['a foreign Origin', { _csrf: me.csrf }, { cookie: me.cookie, origin: 'https://evil.example' }],
    ['an opaque Origin', { _csrf: me.csrf }, { cookie: me.cookie, origin: 'null' }],
    ['Sec-Fetch-Site: cross-site', { _csrf: me.csrf }, { cookie: me.cookie, 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { _csrf: me.csrf }, { cookie: me.cookie, 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site: cross-site with a matching Origin', { _csrf: me.csrf }, { cookie: me.cookie, 'sec-fetch-site': 'cross-site', origin: s.url }]
  ]
  for (const [name, form, headers] of cases) {
    const res = await postForm(s.url, replay, form, headers)
    t.equal(res.status, 403, name)
    t.match(res.text, /CROSS_SITE_REFUSED/, `${name}: a clear page`)
  }
  t.equal((await postForm(s.url, replay, { _csrf: me.csrf })).status, 401, 'no session at all')
  t.equal((await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN }, { origin: 'https://evil.example' })).status, 403, 'no login from another site')
  t.equal(target.received.length, 1, 'nothing refused was replayed')
  // What Chromium sends under Referrer-Policy: no-referrer: an opaque Origin, but Sec-Fetch-Site says same-origin.
  const chromium = await postForm(s.url, replay, { _csrf: me.csrf }, { cookie: me.cookie, origin: 'null', 'sec-fetch-site': 'same-origin' })
  t.equal(chromium.status, 303, 'Sec-Fetch-Site: same-origin decides over an opaque Origin')
  await target.waitFor(2)

  const ok = await postForm(s.url, replay, { _csrf: me.csrf }, { cookie: me.cookie, origin: s.url, 'sec-fetch-site': 'same-origin' })
  t.equal(ok.status, 303)
  t.equal(ok.headers.get('location'), `/admin/notifications/${id}?done=replayed&n=1`)
  await target.waitFor(3)
})

t.test('user-controlled text is escaped on every page', async (t) => {
  const target = await startTarget((_r, _n, res) => { res.writeHead(500).end('<b onmouseover="x()">bad</b>') })
  t.teardown(target.close)
  const s = await startApp(t, { ADMIN_TOKEN, FORWARD_TARGETS: target.url, RETRY_GIVE_UP_AFTER_MS: '100' })
  const id = (await s.post(v2Body({ notificationType: '<script>alert(1)</script>', subtype: '"><img src=x onerror=alert(2)>', bundleId: "com.x'><script>alert(3)</script>" }))).json.id
  await until(async () => (await api(s.url, `/notifications/${id}`)).json.deliveries[0].status === 'dead', 5000, 'dead')
  const { cookie } = await login(s.url)
  for (const path of ['/admin', '/admin/notifications', `/admin/notifications/${id}`, '/admin/dead', '/admin/apple', '/admin/notifications?bundleId=%3Cscript%3E']) {
    const page = await get(s.url, path, cookie)
    t.equal(page.status, 200, path)
    t.notMatch(page.text, /<script>alert|<img src=x|<b onmouseover/, `${path}: nothing user-controlled became markup`)
  }
  const detail = (await get(s.url, `/admin/notifications/${id}`, cookie)).text
  t.match(detail, '&lt;script&gt;alert(1)&lt;/script&gt;', 'the type, escaped')
  t.match(detail, '&quot;&gt;&lt;img src=x onerror=alert(2)&gt;', 'the subtype, escaped')
  t.match(detail, 'com.x&#39;&gt;&lt;script&gt;alert(3)&lt;/script&gt;', 'the bundle ID, escaped')
  t.match(detail, '&lt;b onmouseover=&quot;x()&quot;&gt;bad&lt;/b&gt;', "the target's answer, escaped")
  t.match((await get(s.url, '/admin/notifications?bundleId=%3Cscript%3E', cookie)).text, 'value="&lt;script&gt;"', 'the search box echoes its value escaped')
})

t.test('every page renders real data; replay, bulk replay of the dead and filters work through the forms', async (t) => {
  const good = await startTarget()
  const bad = await startTarget((_r, _n, res) => { res.writeHead(503).end('down') })
  t.teardown(good.close)
  t.teardown(bad.close)
  const s = await startApp(t, { ADMIN_TOKEN, FORWARD_TARGETS: `${good.url},${bad.url}`, RETRY_GIVE_UP_AFTER_MS: '150' })
  const goodName = new URL(good.url).host
  const badName = new URL(bad.url).host
  const types = ['SUBSCRIBED', 'DID_RENEW', 'REFUND']
  const ids: string[] = []
  for (const type of types) ids.push((await s.post(v2Body({ notificationType: type, environment: type === 'REFUND' ? 'Production' : 'Sandbox' }))).json.id)
  await good.waitFor(3)
  await until(async () => (await api(s.url, `/targets`)).json.targets.find((x: any) => x.name === badName).dead === 3, 10_000, 'all dead on the failing target')
  const { cookie, csrf } = await login(s.url)

  const overview = await get(s.url, '/admin', cookie)
  t.match(overview.text, /<td>Sandbox<\/td><td><span class="mono">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/span>/, 'last received per environment, in UTC')
  t.match(overview.text, '<td>Production</td>')
  t.match(overview.text, 'Last 24 hours: 3 received')
  t.match(overview.text, goodName)
  t.match(overview.text, 'HTTP 503', "the failing target's last error")
  t.match(overview.text, '<span class="pill bad">3</span>', 'the dead count in the navigation')

  t.equal(((await get(s.url, '/admin/notifications', cookie)).text.match(/<tr class="row">/g) ?? []).length, 3)
  const list = await get(s.url, '/admin/notifications?limit=2&environment=', cookie)
  t.equal((list.text.match(/<tr class="row">/g) ?? []).length, 2, 'one page')
  const older = /<a href="([^"]+)">Older/.exec(list.text)![1]!.replaceAll('&amp;', '&')
  const page2 = await get(s.url, older, cookie)
  t.match(older, /limit=2&cursor=/, 'the next page keeps the page size')
  t.equal((page2.text.match(/<tr class="row">/g) ?? []).length, 1)
  t.match(page2.text, ids[0]!, 'the oldest is on the second page')
  t.notMatch(page2.text, />Older/)

  const refunds = await get(s.url, `/admin/notifications?type=REFUND&environment=&verification=&deliveryStatus=dead&target=${encodeURIComponent(badName)}&since=1h&until=`, cookie)
  t.equal((refunds.text.match(/<tr class="row">/g) ?? []).length, 1, 'filters as the API, empty fields ignored')
  t.match(refunds.text, `/admin/notifications/${ids[2]!}`)
  t.equal((await get(s.url, '/admin/notifications?since=yesterday-ish', cookie)).status, 400, 'a bad time is a clear 400 page')
  t.equal((await get(s.url, '/admin/notifications?verification=maybe', cookie)).status, 400)
  // Every value the database can hold is offered and admitted.
  for (const v of VERIFICATION_STATUSES) t.equal((await get(s.url, `/admin/notifications?verification=${v}`, cookie)).status, 200, `verification=${v}`)
  for (const v of DELIVERY_STATUSES) t.equal((await get(s.url, `/admin/notifications?deliveryStatus=${v}`, cookie)).status, 200, `deliveryStatus=${v}`)
  const unfiltered = (await get(s.url, '/admin/notifications', cookie)).text
  t.match(unfiltered, DELIVERY_STATUSES.map((v) => `<option>${v}</option>`).join(''), 'the delivery filter offers every status')
  t.match(unfiltered, VERIFICATION_STATUSES.map((v) => `<option>${v}</option>`).join(''), 'the verification filter offers every status')

  const detail = await get(s.url, `/admin/notifications/${ids[2]!}`, cookie)
  t.match(detail.text, '&quot;notificationType&quot;: &quot;REFUND&quot;', 'the payload JSON, escaped')
  t.match(detail.text, `<section class="card delivery" data-target="${badName}">`)
  t.match(detail.text, '<tr class="attempt"><td>1</td>', 'every attempt')
  t.match(detail.text, 'down', "the failing target's answer")
  t.match(detail.text, `name="target" value="${badName}"`, 'a replay button per target')
  t.equal((await get(s.url, '/admin/notifications/nope', cookie)).status, 404)

  // One notification to the failing target alone, once it is fixed.
  bad.respond((_r, _n, res) => { res.writeHead(200).end() })
  const before = bad.received.length
  const one = await postForm(s.url, `/admin/notifications/${ids[2]!}/replay`, { _csrf: csrf, target: badName }, { cookie })
  t.equal(one.status, 303)
  await bad.waitFor(before + 1)
  t.equal(good.received.length, 3, 'the other target did not get it again')
  const flashed = await get(s.url, one.headers.get('location')!, cookie)
  t.match(flashed.text, 'Replay queued to 1 target')
  t.equal((await postForm(s.url, `/admin/notifications/${ids[2]!}/replay`, { _csrf: csrf, target: 'nobody' }, { cookie })).status, 400)

  const dead = await get(s.url, '/admin/dead', cookie)
  t.match(dead.text, '2 dead</span>')
  t.match(dead.text, 'Replay all dead of ' + badName)
  const bulk = await postForm(s.url, '/admin/dead/replay', { _csrf: csrf, target: badName }, { cookie })
  t.equal(bulk.status, 303)
  t.equal(bulk.headers.get('location'), '/admin/dead?done=bulk&n=2')
  await bad.waitFor(before + 3)
  await until(async () => (await api(s.url, '/targets')).json.targets.find((x: any) => x.name === badName).dead === 0, 10_000, 'no dead left')
  t.match((await get(s.url, '/admin/dead?done=bulk&n=2', cookie)).text, 'Replay queued for 2 notifications')
  t.equal((await postForm(s.url, '/admin/dead/replay', { _csrf: csrf }, { cookie })).status, 400, 'a target is required')

  t.match((await get(s.url, '/admin/assets/dashboard.css')).headers.get('content-type'), /^text\/css/, 'the stylesheet needs no session')
  t.match((await get(s.url, '/admin/assets/dashboard.js')).headers.get('content-type'), /^text\/javascript/)
})

t.test('the quarantine page lists refused payloads and releases them', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { ADMIN_TOKEN, ...enforceUntrustedRoot(t), FORWARD_TARGETS: target.url })
  t.equal((await s.post(untrustedNotification({}, 'com.forged<i>'))).status, 403)
  const { cookie, csrf } = await login(s.url)
  const page = await get(s.url, '/admin/quarantine', cookie)
  t.equal(page.status, 200)
  t.match(page.text, 'SIGNATURE_INVALID')
  t.match(page.text, 'com.forged&lt;i&gt;')
  t.match(page.text, 'action="/admin/quarantine/1/release"')
  t.match((await get(s.url, '/admin', cookie)).text, /Quarantine <span class="pill bad">1<\/span>/)

  const still = await postForm(s.url, '/admin/quarantine/1/release', { _csrf: csrf }, { cookie })
  t.equal(still.status, 403, 'still refused under the same configuration')
  t.match(still.text, 'SIGNATURE_INVALID')
  const forced = await postForm(s.url, '/admin/quarantine/1/release', { _csrf: csrf, force: '1' }, { cookie })
  t.equal(forced.status, 303)
  t.match(forced.headers.get('location'), /^\/admin\/notifications\/[0-9a-f-]{36}\?done=released$/)
  await target.waitFor(1)
  t.match((await get(s.url, forced.headers.get('location')!, cookie)).text, 'Released from the quarantine')
  t.match((await get(s.url, '/admin/quarantine', cookie)).text, /released \S+ as <a/)
  t.equal((await postForm(s.url, '/admin/quarantine/77/release', { _csrf: csrf }, { cookie })).status, 404)
})

// HSTS only where the browser really came over HTTPS: a header sent over plain
// HTTP is ignored by browsers anyway, and a spoofed X-Forwarded-Proto must not
// make an instance that has no HTTPS pin browsers to it.
t.test('dashboard pages reached over HTTPS through a trusted proxy carry Strict-Transport-Security; plain HTTP does not', async (t) => {
  const trusted = await startApp(t, { ADMIN_TOKEN, TRUST_PROXY: 'forwarded' })
  const https = { 'x-forwarded-proto': 'https' }
  const loginPage = await fetch(`${trusted.url}/admin/login`, { headers: https })
  t.equal(loginPage.headers.get('strict-transport-security'), 'max-age=31536000', 'the login page')
  const session = await postForm(trusted.url, '/admin/login', { token: ADMIN_TOKEN }, https)
  const cookie = session.headers.get('set-cookie')!.split(';')[0]!
  const overview = await fetch(`${trusted.url}/admin`, { headers: { ...https, cookie } })
  t.equal(overview.status, 200)
  t.equal(overview.headers.get('strict-transport-security'), 'max-age=31536000', 'a page behind the login')
  t.equal((await get(trusted.url, '/admin/login')).headers.get('strict-transport-security'), null, 'plain HTTP through the proxy: none')
  const untrusted = await startApp(t, { ADMIN_TOKEN })
  const spoofed = await fetch(`${untrusted.url}/admin/login`, { headers: https })
  t.equal(spoofed.headers.get('strict-transport-security'), null, 'without TRUST_PROXY the header is not believed')
})
