import t from 'tap'
import { ago, escapeHtml, html, utc } from '../../src/dashboard/html.ts'
import { detailFields } from '../../src/dashboard/views.ts'
import type { NotificationSummary } from '../../src/outbox/engine.ts'
import { createSessions, readCookie, SESSION_TTL_MS } from '../../src/dashboard/session.ts'

t.test('html escapes every interpolated value unless it is a fragment of its own', async (t) => {
  t.equal(escapeHtml(`<a href="x" onclick='y'>&\`</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;')
  const evil = '"><script>alert(1)</script>'
  t.equal(html`<input value="${evil}">`.value, '<input value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">')
  t.equal(html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`.value, '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>', 'arrays: strings escaped, fragments kept')
  t.equal(html`[${null}${undefined}${false}${0}]`.value, '[0]', 'nothing for null, undefined, false; 0 is shown')
  t.equal(String(html`<p>${1}</p>`), '<p>1</p>')
})

t.test('times are UTC ISO text; ages are rounded to a readable unit', async (t) => {
  t.equal(utc(Date.UTC(2026, 0, 31, 23, 59, 58, 123)), '2026-01-31T23:59:58Z')
  t.equal(utc(null), '-')
  t.equal(utc(undefined), '-')
  const now = Date.UTC(2026, 0, 31)
  t.equal(ago(null, now), '-')
  t.equal(ago(now - 5_000, now), '5 s ago')
  t.equal(ago(now + 5_000, now), '0 s ago', 'a clock a little ahead is not negative')
  t.equal(ago(now - 10 * 60_000, now), '10 min ago')
  t.equal(ago(now - 5 * 3_600_000, now), '5 h ago')
  t.equal(ago(now - 3 * 86_400_000, now), '3 d ago')
})

t.test('sessions: signed, expiring, revocable; CSRF tokens belong to one session', async (t) => {
  const sessions = createSessions()
  const now = Date.now()
  const { session, cookie } = sessions.issue(now)
  t.same(sessions.verify(cookie, now), session)
  t.equal(sessions.verify(cookie, now + SESSION_TTL_MS), null, 'expired')
  t.equal(sessions.verify(undefined, now), null)
  t.equal(sessions.verify(cookie.replace(/\.\d+\./, `.${session.expiresAt + 1}.`), now), null, 'a longer expiry is not signed')
  t.equal(createSessions().verify(cookie, now), null, 'another process (another key) does not know it')

  const other = sessions.issue(now).session
  t.ok(sessions.checkCsrf(session, sessions.csrfToken(session)))
  t.notOk(sessions.checkCsrf(session, sessions.csrfToken(other)))
  t.notOk(sessions.checkCsrf(session, undefined))
  t.notOk(sessions.checkCsrf(session, 'short'))

  sessions.revoke(session)
  t.equal(sessions.verify(cookie, now), null, 'revoked')
  const spent = sessions.issue(now - 2 * SESSION_TTL_MS).session
  sessions.revoke(spent)
  sessions.revoke(other)
  t.equal(sessions.verify(cookie, now), null, 'still revoked after expired entries are dropped')
})

t.test('readCookie finds one cookie among several', async (t) => {
  t.equal(readCookie('a=1; storehook_session=v.1.x; b=2', 'storehook_session'), 'v.1.x')
  t.equal(readCookie('a=1', 'storehook_session'), undefined)
  t.equal(readCookie(undefined, 'storehook_session'), undefined)
  t.equal(readCookie('=x; junk', 'storehook_session'), undefined)
})

t.test('the detail page lists every stored field in the table\'s order, one not named yet under its key', async (t) => {
  const received = Date.UTC(2026, 0, 31, 12)
  const n = {
    id: '0190a0b0-0000-7000-8000-000000000000', receivedAt: received, source: 'webhook', version: 2,
    notificationUuid: 'u-1', notificationType: 'DID_RENEW', subtype: null, environment: 'Sandbox', bundleId: 'com.example',
    appAppleId: null, signedDate: received - 1000, originalTransactionId: '1000', transactionId: null, productId: 'p', appAccountToken: null,
    verification: 'verified', verificationError: null
  } as const
  t.same(detailFields(n as NotificationSummary), [
    ['Storehook ID', n.id], ['Received', '2026-01-31T12:00:00Z'], ['Source', 'webhook'], ['Version', 2],
    ['Notification UUID', 'u-1'], ['Type', 'DID_RENEW'], ['Environment', 'Sandbox'], ['Bundle ID', 'com.example'],
    ['Signed', '2026-01-31T11:59:59Z'], ['Original transaction ID', '1000'], ['Product ID', 'p'], ['Verification', 'verified']
  ], 'labelled, times as UTC, null fields left out')
  // A column added to the table reaches the page without a change to the views.
  const added = detailFields({ ...n, storefront: 'FRA' } as NotificationSummary)
  t.same(added.at(-1), ['storefront', 'FRA'])
})
