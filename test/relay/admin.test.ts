import t from 'tap'
import { ADMIN_TOKEN as TOKEN, api } from '../helpers/admin.ts'
import { startApp, until } from '../helpers/app.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'
import { DELIVERY_STATUSES, VERIFICATION_STATUSES } from '../../src/db/vocabulary.ts'

t.test('without ADMIN_TOKEN, /admin does not exist', async (t) => {
  const s = await startApp(t)
  const r = await api(s.url, '/notifications')
  t.equal(r.status, 404)
})

t.test('the token is required, and a wrong one is refused', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN: TOKEN })
  t.equal((await api(s.url, '/notifications', {}, null)).status, 401)
  const wrong = await api(s.url, '/notifications', {}, TOKEN + 'x')
  t.equal(wrong.status, 401)
  t.equal(wrong.json.code, 'UNAUTHORIZED')
  t.equal((await api(s.url, '/notifications')).status, 200)
})

t.test('list, filter, page, inspect, replay, and target health', async (t) => {
  const good = await startTarget()
  const bad = await startTarget((_r, _n, res) => { res.writeHead(500).end('nope') })
  t.teardown(good.close)
  t.teardown(bad.close)
  const s = await startApp(t, { ADMIN_TOKEN: TOKEN, FORWARD_TARGETS: `${good.url},${bad.url}`, RETRY_GIVE_UP_AFTER_MS: '200' })
  const goodName = new URL(good.url).host
  const badName = new URL(bad.url).host
  const ids: string[] = []
  for (const body of [v2Body({ notificationType: 'SUBSCRIBED', environment: 'Sandbox' }), v2Body({ notificationType: 'REFUND', environment: 'Production' }), v1Body()]) {
    ids.push((await s.post(body)).json.id)
  }
  await good.waitFor(3)
  await until(async () => (await api(s.url, `/notifications?deliveryStatus=dead&target=${badName}`)).json.items.length === 3, 5000, 'dead deliveries')

  const all = await api(s.url, '/notifications')
  t.same(all.json.items.map((i: any) => i.id), [...ids].reverse(), 'newest first')
  t.same(all.json.items[0].deliveries.map((d: any) => [d.target, d.status]).sort(), [[badName, 'dead'], [goodName, 'delivered']].sort())

  t.same((await api(s.url, '/notifications?type=REFUND')).json.items.map((i: any) => i.id), [ids[1]])
  t.same((await api(s.url, '/notifications?environment=Sandbox')).json.items.map((i: any) => i.id), [ids[0]])
  t.same((await api(s.url, '/notifications?originalTransactionId=1000000111111111')).json.items.map((i: any) => i.id), [ids[2]], 'by original transaction ID (V1 receipt)')
  t.same((await api(s.url, `/notifications?since=${Date.now() + 60_000}`)).json.items, [])
  t.equal((await api(s.url, '/notifications?verification=maybe')).status, 400, 'bad filters are 400')
  // The filter admits every value the database can hold: one the route's
  // schema left out could never be searched for.
  for (const v of VERIFICATION_STATUSES) t.equal((await api(s.url, `/notifications?verification=${v}`)).status, 200, `verification=${v}`)
  for (const v of DELIVERY_STATUSES) t.equal((await api(s.url, `/notifications?deliveryStatus=${v}`)).status, 200, `deliveryStatus=${v}`)

  const page1 = await api(s.url, '/notifications?limit=2')
  t.equal(page1.json.items.length, 2)
  const page2 = await api(s.url, `/notifications?limit=2&cursor=${page1.json.nextCursor}`)
  t.same(page2.json.items.map((i: any) => i.id), [ids[0]])
  t.equal(page2.json.nextCursor, null)

  const one = await api(s.url, `/notifications/${ids[1]}`)
  t.equal(one.status, 200)
  t.equal(one.json.payload.notificationType, 'REFUND', 'the decoded payload')
  const badDelivery = one.json.deliveries.find((d: any) => d.target === badName)
  t.ok(badDelivery.history.length >= 1, 'every attempt')
  t.equal(badDelivery.history[0].statusCode, 500)
  t.equal(badDelivery.history[0].responseExcerpt, 'nope')
  t.equal((await api(s.url, '/notifications/nope')).status, 404)

  // The target is fixed; replay the dead delivery to it alone.
  bad.respond((_r, _n, res) => { res.writeHead(200).end() })
  const before = bad.received.length
  const replay = await api(s.url, `/notifications/${ids[1]}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ targets: [badName] }) })
  t.same(replay.json, { id: ids[1], replayed: [badName] })
  await bad.waitFor(before + 1)
  await until(async () => (await api(s.url, `/notifications/${ids[1]}`)).json.deliveries.every((d: any) => d.status === 'delivered'))
  t.equal(good.received.length, 3, 'the other target did not get it again')
  t.equal((await api(s.url, `/notifications/${ids[1]}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"targets":["nobody"]}' })).status, 400)

  const targets = await api(s.url, '/targets')
  const health = Object.fromEntries(targets.json.targets.map((x: any) => [x.name, x]))
  t.equal(health[goodName].delivered >= 3, true)
  t.equal(health[goodName].dead, 0)
  t.ok(health[goodName].lastSuccessAt > 0)
  t.equal(health[badName].dead, 2, 'the two not replayed are still dead')
  // Once failing, the target is probed, and deliveries never probed again die with a note of their own.
  t.match(health[badName].lastError, /^(HTTP 500|gave up: the target was failing)/)
  t.notMatch(JSON.stringify(targets.json), /\/hook/, 'target URLs (which may carry tokens) are not shown')

  t.equal((await api(s.url, `/notifications/${ids[0]}/replay`, { method: 'POST' })).status, 200, 'no body: every target it had')
  await until(async () => (await api(s.url, `/notifications/${ids[0]}`)).json.deliveries.every((d: any) => d.status === 'delivered'))
  t.equal(good.received.filter((r) => r.headers['x-storehook-notification-id'] === ids[0]).length, 2, 'replayed to the target that had it')
})

// API answers carry whole notifications (bodies, transaction IDs): no browser
// or proxy cache may keep them, nor the 401 that says a token was tried.
t.test('every /admin/api answer says Cache-Control: no-store', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN: TOKEN })
  t.equal((await s.post(v2Body())).status, 200)
  const list = await fetch(`${s.url}/admin/api/notifications`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(list.status, 200)
  const [first] = (await list.json() as { items: Array<{ id: string }> }).items
  const answers = [
    list,
    await fetch(`${s.url}/admin/api/notifications/${first!.id}`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    await fetch(`${s.url}/admin/api/notifications/nope`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    await fetch(`${s.url}/admin/api/quarantine`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    await fetch(`${s.url}/admin/api/notifications`)
  ]
  t.same(answers.map((r) => r.status), [200, 200, 404, 200, 401])
  for (const r of answers) t.equal(r.headers.get('cache-control'), 'no-store', `${r.status} ${r.url}`)
})
