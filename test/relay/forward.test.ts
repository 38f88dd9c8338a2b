import { sql } from 'drizzle-orm'
import t from 'tap'
import { configFile, startApp, until } from '../helpers/app.ts'
import { hostOf, settled, tally } from '../helpers/facts.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

const pkg = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('V2 and V1 reach two targets byte for byte, with the specified headers', async (t) => {
  const a = await startTarget()
  const b = await startTarget()
  t.teardown(a.close)
  t.teardown(b.close)
  const s = await startApp(t, { FORWARD_TARGETS: `${a.url}?token=secret-in-url,${b.url}` })

  const v2 = v2Body()
  const v1 = v1Body()
  const r2 = await s.post(v2)
  const r1 = await s.post(v1, { 'content-type': 'application/json; charset=utf-8' })
  t.equal(r2.status, 200)
  t.equal(r1.status, 200)
  t.equal(r2.json.duplicate, false)
  t.match(r2.json.id, /^[0-9a-f-]{36}$/)

  for (const target of [a, b]) {
    const got = await target.waitFor(2)
    const byId = new Map(got.map((r) => [r.headers['x-storehook-notification-id'], r]))
    const g2 = byId.get(r2.json.id)!
    const g1 = byId.get(r1.json.id)!
    t.ok(g2.body.equals(v2), 'V2 body is byte-identical')
    t.ok(g1.body.equals(v1), 'V1 body is byte-identical')
    for (const g of [g1, g2]) {
      t.equal(g.method, 'POST')
      t.equal(g.headers['content-type'], 'application/json')
      t.equal(g.headers['user-agent'], `storehook/${pkg.version}`)
      t.equal(g.headers['x-storehook-attempt'], '1')
      t.notOk(g.headers['webhook-signature'], 'no signature without a signing secret')
    }
  }
  t.equal(a.received[0]!.url, '/hook?token=secret-in-url', 'the query string of the target URL is kept')
  // The outcome is logged once it is recorded, a moment after the target has the POST.
  const deliveredLine = (l: string): boolean => l.includes('"msg":"Delivered."') && l.includes('"target":"127.0.0.1:')
  await until(() => s.logs.some(deliveredLine), 5000, 'the Delivered log line')
  t.ok(s.logs.some(deliveredLine), 'targets are logged by host')
  t.notOk(s.logs.join('').includes('secret-in-url'), 'the token in a target URL never reaches the logs')
  t.notOk(s.logs.join('').includes(v2.subarray(20, 80).toString()), 'bodies are not logged at info')
})

t.test('a repeated notificationUUID answers 200 and is not forwarded twice', async (t) => {
  const a = await startTarget()
  t.teardown(a.close)
  const s = await startApp(t, { FORWARD_TARGETS: a.url })
  const body = v2Body({ notificationUUID: '11111111-2222-3333-4444-555555555555' })
  const first = await s.post(body)
  await a.waitFor(1)
  const again = await s.post(v2Body({ notificationUUID: '11111111-2222-3333-4444-555555555555' }))
  t.equal(again.status, 200)
  t.equal(again.json.duplicate, true)
  t.equal(again.json.id, first.json.id, 'the repeat names the stored notification')
  // Concurrent repeats land in one group commit: still one row, one delivery.
  const burst = await Promise.all(Array.from({ length: 5 }, () => s.post(v2Body({ notificationUUID: 'aaaaaaaa-2222-3333-4444-555555555555' }))))
  t.same(burst.map((r) => r.status), [200, 200, 200, 200, 200])
  t.equal(burst.filter((r) => r.json.duplicate === false).length, 1)
  // A repeat let through would be a row of its own, committed before its 200:
  // once every row is settled, the rows and the target say all that was sent.
  await settled(s)
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!.n, 2, 'one stored notification per UUID')
  t.same(await tally(s, hostOf(a.url)), { deliveries: 2, delivered: 2, dead: 0, pending: 0, attempts: 2, recorded: 2 }, 'one delivery each, sent once')
  t.same(a.received.map((r) => r.headers['x-storehook-notification-id']).sort(), [first.json.id, burst.find((r) => r.json.duplicate === false)!.json.id].sort(), 'each UUID forwarded once')
})

t.test('with no target, notifications are kept and a warning says so', async (t) => {
  const s = await startApp(t, {})
  const r = await s.post(v2Body())
  t.equal(r.status, 200)
  const row = (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!
  t.equal(row.n, 1)
  await until(() => s.logs.some((l) => l.includes('No forwarding target is configured')))
  t.pass('warned')
})

t.test('a claimed delivery that waited too long for a slot goes back instead of outliving its lease', async (t) => {
  // One slot, an answer that takes 900 ms of the 1.5 s timeout (headroom for a
  // loaded machine), a lease of 2 x 1.5 s + 5 s: the worker claims ten ahead
  // before it learns how slow the target is, and the last of them (9 s of
  // answers in) would start with too little lease left.
  const received: string[] = []
  const a = await startTarget(async (req, _n, res) => {
    received.push(String(req.headers['x-storehook-attempt']))
    await new Promise((resolve) => setTimeout(resolve, 900))
    res.writeHead(200).end()
  })
  t.teardown(a.close)
  const s = await startApp(t, {
    DELIVERY_TIMEOUT_MS: '1500',
    STOREHOOK_CONFIG: configFile(t, { targets: [{ name: 'slow', url: a.url, concurrency: 1 }] })
  })
  const posted = await Promise.all(Array.from({ length: 10 }, () => s.post(v2Body())))
  t.same(posted.map((r) => r.status), Array(10).fill(200))
  await a.waitFor(10, 30_000)
  await settled(s)
  t.same(received, Array(10).fill('1'), 'each sent once, as its first attempt')
  t.same(await tally(s, 'slow'), { deliveries: 10, delivered: 10, dead: 0, pending: 0, attempts: 10, recorded: 10 })
  const rows = (await s.facts.all<{ attempts: number; fence: number }>(sql`SELECT attempts, fence FROM deliveries`))
  t.ok(rows.every((r) => r.attempts === 1), 'no attempt was counted for a claim that went back')
  t.ok(rows.some((r) => r.fence > 1), 'some claims went back and were claimed again')
})

t.test('a fresh notification to a target with room goes out without a claim: stored leased, sent from memory', async (t) => {
  const a = await startTarget()
  t.teardown(a.close)
  const s = await startApp(t, { FORWARD_TARGETS: a.url })
  // Nothing outside the writer's internals tells a handed-off delivery from a
  // claimed one (same row, same headers, same bytes), so the test watches the
  // claim itself: every delivery a claim returns, whatever else is written
  // meanwhile (start-up, polls, retention) and however the writes are batched.
  const outbox = s.app.outbox
  const claim = outbox.claim.bind(outbox)
  const claimed: number[] = []
  outbox.claim = async (...args) => {
    const got = await claim(...args)
    claimed.push(...got.map((c) => c.deliveryId))
    return got
  }
  t.teardown(() => { outbox.claim = claim })
  const body = v2Body()
  const r = await s.post(body)
  await settled(s)
  const [got] = a.received
  t.ok(got!.body.equals(body), 'byte for byte')
  t.equal(got!.headers['x-storehook-attempt'], '1')
  const [d] = (await s.facts.all<{ id: number; status: string; attempts: number; fence: number }>(sql`SELECT id, status, attempts, fence FROM deliveries WHERE notification_id = ${r.json.id}`))
  t.match(d, { status: 'delivered', attempts: 1, fence: 1 }, 'sent once, on the lease written with the notification')
  t.notOk(claimed.includes(d!.id), 'no claim returned it')
  t.same(await tally(s), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: 1, recorded: 1 })
  t.equal(a.received.length, 1)
})
