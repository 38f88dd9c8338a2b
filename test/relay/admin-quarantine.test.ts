import t from 'tap'
import { ADMIN_TOKEN as TOKEN, api, enforceUntrustedRoot, untrustedNotification } from '../helpers/admin.ts'
import { startApp } from '../helpers/app.ts'
import { startTarget } from '../helpers/target.ts'

const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

t.test('the quarantine is listed page by page and released through the API', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { ADMIN_TOKEN: TOKEN, ...enforceUntrustedRoot(t), FORWARD_TARGETS: target.url })

  // Signed by a chain that does not lead to the configured root: refused, kept.
  const bodies: string[] = []
  for (const type of ['SUBSCRIBED', 'DID_RENEW', 'REFUND']) {
    const body = untrustedNotification({ notificationType: type })
    bodies.push(body)
    t.equal((await s.post(body)).status, 403)
  }

  t.equal((await api(s.url, '/quarantine', {}, null)).status, 401, 'behind the token like the rest')
  const page1 = await api(s.url, '/quarantine?limit=2')
  t.equal(page1.status, 200)
  t.same(page1.json.items.map((i: any) => i.notificationType), ['REFUND', 'DID_RENEW'], 'newest first')
  t.equal(page1.json.items[0].code, 'SIGNATURE_INVALID')
  t.equal(page1.json.items[0].body, undefined, 'the stored bytes are not listed')
  t.equal(page1.json.items.length, 2)
  t.equal(page1.json.nextCursor, page1.json.items[1].id)
  const page2 = await api(s.url, `/quarantine?limit=2&cursor=${page1.json.nextCursor}`)
  t.same(page2.json.items.map((i: any) => i.notificationType), ['SUBSCRIBED'])
  t.equal(page2.json.nextCursor, null)
  t.equal(typeof page1.json.bytes, 'number')
  t.equal(page1.json.items.length, 2)
  t.equal((await api(s.url, '/quarantine?limit=0')).status, 400)

  const refund = page1.json.items[0]
  const still = await api(s.url, `/quarantine/${refund.id}/release`, post({}))
  t.equal(still.status, 403, 'released under the same configuration: still refused')
  t.equal(still.json.code, 'SIGNATURE_INVALID')
  t.equal(target.received.length, 0)

  const forced = await api(s.url, `/quarantine/${refund.id}/release`, post({ force: true }))
  t.equal(forced.status, 200)
  t.equal(forced.json.quarantineId, refund.id)
  t.match(forced.json.id, /^[0-9a-f-]{36}$/)
  const [got] = await target.waitFor(1, 5000)
  t.equal(got!.body.toString(), bodies[2], 'the exact refused bytes reach the target')
  const stored = await api(s.url, `/notifications/${forced.json.id}`)
  t.equal(stored.json.verification, 'unverified', 'forced: stored as unverified')
  t.equal(stored.json.source, 'quarantine')
  const after = await api(s.url, '/quarantine')
  t.equal(after.json.items.find((i: any) => i.id === refund.id).releasedAs, forced.json.id)

  t.equal((await api(s.url, '/quarantine/9999/release', post({ force: true }))).status, 404)
  t.equal((await api(s.url, '/quarantine/abc/release', post({}))).status, 400)
  t.equal((await api(s.url, `/quarantine/${refund.id}/release`, post({ force: 'yes' }))).status, 400)
})
