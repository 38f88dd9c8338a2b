// The dashboard's alerts page (issue 17): open episodes, the history, the
// destinations by name (never their URLs), and the test alert button behind
// the session and its CSRF token.
import t from 'tap'
import { ADMIN_TOKEN } from '../helpers/admin.ts'
import { startApp, until } from '../helpers/app.ts'
import { get, login, postForm } from '../helpers/dashboard.ts'
import { startTarget } from '../helpers/target.ts'

t.test('/admin/alerts shows open episodes and the history, and its button queues a test alert to every destination', async (t) => {
  const rx = await startTarget(undefined, '/alerts?token=SECRETalerts')
  t.teardown(rx.close)
  const s = await startApp(t, { ADMIN_TOKEN, ALERT_URLS: rx.url, ALERT_CHECK_INTERVAL_MS: '3600000' })
  await s.app.outbox.openAlert({ event: 'apple.silent', subject: 'Production', facts: { silentForMs: 90_000_000, lastAt: 1 }, destinations: [] }, Date.now())
  const { cookie, csrf } = await login(s.url)
  const before = await get(s.url, '/admin/alerts', cookie)
  t.equal(before.status, 200)
  t.match(before.text, /apple\.silent<\/span><\/td><td>Production<\/td>/, 'the open episode')
  t.match(before.text, /No notification from Apple \(Production\) for 25 h/)
  t.match(before.text, /<td>127\.0\.0\.1:\d+<\/td><td>json<\/td><td class="small">all<\/td>/, 'the destination by name and format')
  t.notMatch(before.text, /SECRET/, 'never its URL')

  t.equal((await postForm(s.url, '/admin/alerts/test', { _csrf: 'x'.repeat(43) }, { cookie })).status, 403, 'a wrong CSRF token is refused')
  t.equal(rx.received.length, 0)
  const posted = await postForm(s.url, '/admin/alerts/test', { _csrf: csrf }, { cookie })
  t.equal(posted.status, 303)
  t.equal(posted.headers.get('location'), '/admin/alerts?done=alerted&n=1')
  await rx.waitFor(1)
  t.match(JSON.parse(rx.received[0]!.body.toString()), { event: 'test' })
  await until(async () => (await s.app.outbox.alertHistory(5)).some((m) => m.status === 'sent'), 10_000, 'the test alert recorded as sent')
  const after = await get(s.url, '/admin/alerts?done=alerted&n=1', cookie)
  t.match(after.text, /Test alert queued to 1 destination;/)
  t.match(after.text, /<td>test<\/td><td>storehook<\/td><td>127\.0\.0\.1:\d+<\/td><td><span class="pill delivered">delivered<\/span> sent<\/td><td>1<\/td>/, 'the history row')
  t.equal((await get(s.url, '/admin/alerts')).status, 303, 'no session: to the login')
})
