// Bodies are stored compressed (src/outbox/bodies.ts). A row whose bytes no
// longer give back what was received (damaged on disk, a hand edit, a chain
// row gone) must not turn any view into a 500, and is never sent or released
// as other bytes: views say why it cannot be read, replay and release answer
// 409 BODY_UNREADABLE, and the rest of the database keeps working.
import { sql } from 'drizzle-orm'
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { startApp } from '../helpers/app.ts'
import { get, login } from '../helpers/dashboard.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { runCli } from '../helpers/process.ts'

t.test('a stored body that cannot be read back is shown as such everywhere, and never sent again', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const chained = (await s.post(v2Body())).json.id as string
  const deflated = (await s.post(v1Body({ type: 'DID_RENEW', password: 'x'.repeat(300) }))).json.id as string
  const flipped = (await s.post(v2Body())).json.id as string
  const healthyBody = v2Body()
  const healthy = (await s.post(healthyBody)).json.id as string
  const encodings = (await s.facts.all<{ id: string; e: string }>(sql`SELECT id, body_encoding AS e FROM notifications WHERE id IN (${chained}, ${deflated})`))
  t.same(new Set(encodings.map((r) => r.e)), new Set(['zlib-chain', 'zlib']), 'one row of each compressed encoding')

  // A skeleton cut short behind an intact chain digest, and a deflate stream
  // that is not one.
  await s.facts.run(sql`UPDATE notifications SET body = substr(body, 1, 12) WHERE id = ${chained}`)
  await s.facts.run(sql`UPDATE notifications SET body = ${Buffer.from('ff00ff00', 'hex')} WHERE id = ${deflated}`)
  // One byte flipped in the middle of a stream that still inflates: zlib's
  // check, not luck, is what keeps other bytes from being read back.
  const stored = (await s.facts.get<{ body: Buffer }>(sql`SELECT body FROM notifications WHERE id = ${flipped}`))!.body
  stored[stored.length >> 1]! ^= 0x01
  await s.facts.run(sql`UPDATE notifications SET body = ${stored} WHERE id = ${flipped}`)
  await s.facts.run(sql`INSERT INTO quarantine (received_at, code, reason, bytes, body, body_encoding) VALUES (1, 'SIGNATURE_INVALID', 'forged', 4, ${Buffer.from('ff00ff00', 'hex')}, 'zlib')`)
  const quarantined = (await s.facts.get<{ id: number }>(sql`SELECT max(id) AS id FROM quarantine`))!.id

  for (const id of [chained, deflated, flipped]) {
    const detail = await api(s.url, `/notifications/${id}`)
    t.equal(detail.status, 200, `API detail of ${id}`)
    t.equal(detail.json.body, null, 'no bytes are shown in place of the body')
    t.match(detail.json.payloadError, /cannot be read back/, 'and the detail says why')
    const replay = await api(s.url, `/notifications/${id}/replay`, { method: 'POST' })
    t.equal(replay.status, 409, 'replay is refused')
    t.equal(replay.json.code, 'BODY_UNREADABLE')
  }
  t.equal((await api(s.url, '/notifications')).status, 200, 'API list')
  const release = await api(s.url, `/quarantine/${quarantined}/release`, { method: 'POST' })
  t.equal(release.status, 409, 'a quarantined body that cannot be read back is not released')
  t.equal(release.json.code, 'BODY_UNREADABLE')

  const { cookie } = await login(s.url)
  for (const path of ['/admin', '/admin/notifications', '/admin/quarantine', `/admin/notifications/${chained}`, `/admin/notifications/${deflated}`]) {
    t.equal((await get(s.url, path, cookie)).status, 200, `dashboard ${path}`)
  }
  t.match((await get(s.url, `/admin/notifications/${chained}`, cookie)).text, /<p class="error">The stored body cannot be read back: /, 'the page says why')

  const readable = await api(s.url, `/notifications/${healthy}`)
  t.equal(readable.json.body, healthyBody.toString(), 'the other rows read back as they were')
  t.equal((await s.post(v2Body())).status, 200, 'and ingest goes on')

  const status = await runCli(['status'], s.env)
  t.equal(status.code, 0, status.stderr)
})
