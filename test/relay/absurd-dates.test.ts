// A date JavaScript cannot represent (beyond ±8.64e15 ms) must not turn a page
// into a 500: the decoder drops such a signedDate, and every view, the API and
// the CLI show '-' for one already in the file (an older version, a hand edit).
import { sql } from 'drizzle-orm'
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { onPostgres, startApp } from '../helpers/app.ts'
import { get, login } from '../helpers/dashboard.ts'
import { v2Body } from '../helpers/notifications.ts'
import { runCli } from '../helpers/process.ts'

t.test('an absurd signedDate is not kept, and absurd dates already stored render everywhere', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const posted = await s.post(v2Body({ signedDate: 1e300 }))
  t.equal(posted.status, 200, 'accepted (under off, as under log)')
  const decoded = await api(s.url, `/notifications/${posted.json.id as string}`)
  t.equal(decoded.json.signedDate, null, 'the decoder kept no date it cannot represent')

  // Rows as an older version (or a hand edit) may have left them.
  const other = await s.post(v2Body())
  const id = other.json.id as string
  // SQLite keeps any number; PostgreSQL's bigint column goes no further than 2^63 - 1.
  const absurd = onPostgres() ? sql`9223372036854775807` : sql`1e300`
  await s.facts.run(sql`UPDATE notifications SET signed_date = ${absurd}, received_at = ${8.64e15 + 1} WHERE id = ${id}`)
  await s.facts.run(sql`INSERT INTO quarantine (received_at, code, reason, bytes, body) VALUES (${absurd}, 'SIGNATURE_INVALID', 'forged', 2, ${Buffer.from('{}')})`)

  const { cookie } = await login(s.url)
  for (const path of ['/admin', '/admin/notifications', `/admin/notifications/${id}`, '/admin/quarantine']) {
    const page = await get(s.url, path, cookie)
    t.equal(page.status, 200, `dashboard ${path}`)
  }
  t.match((await get(s.url, `/admin/notifications/${id}`, cookie)).text, /<dt>Signed<\/dt><dd class="mono">-<\/dd>/, 'the date shows as -')
  const detail = await api(s.url, `/notifications/${id}`)
  t.equal(detail.status, 200, 'API detail')
  t.equal((await api(s.url, '/notifications')).status, 200, 'API list')
  t.equal((await api(s.url, '/quarantine')).status, 200, 'API quarantine')

  const env = s.env
  const status = await runCli(['status'], env)
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /Last notification received:\n {2}Sandbox +- +DID_RENEW\n/, 'status shows - for the date')
  const list = await runCli(['quarantine', 'list'], env)
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^\d+\t-\tSIGNATURE_INVALID\t/m, 'quarantine list shows - for the date')
})
