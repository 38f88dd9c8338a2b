import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, until } from '../helpers/app.ts'
import { hostOf, settled, tally } from '../helpers/facts.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

interface DeliveryState { target: string; status: string; attempts: number; last_status_code: number | null; last_error: string | null }

async function deliveriesOf (s: Awaited<ReturnType<typeof startApp>>, id: string): Promise<DeliveryState[]> {
  return await s.facts.all<DeliveryState>(sql`SELECT target, status, attempts, last_status_code, last_error FROM deliveries WHERE notification_id = ${id} ORDER BY target`)
}

t.test('a target failing N times gets it once successfully on attempt N+1; the other target at once', async (t) => {
  const N = 3
  const flaky = await startTarget((_r, n, res) => { res.writeHead(n <= N ? 503 : 200).end(n <= N ? 'down for maintenance' : 'ok') })
  const healthy = await startTarget()
  t.teardown(flaky.close)
  t.teardown(healthy.close)
  const s = await startApp(t, { STOREHOOK_CONFIG: '', FORWARD_TARGETS: `${flaky.url},${healthy.url}` })
  const body = v2Body()
  const { json } = await s.post(body)

  await healthy.waitFor(1)
  t.ok(flaky.received.length <= 2, 'the healthy target did not wait for the flaky one to recover')
  // A delivered row is never claimed again (test/unit/store.test.ts): once
  // the rows are settled, what the target has is all it will get.
  await settled(s)
  const got = flaky.received
  t.equal(got.length, N + 1, 'no delivery after the success')
  t.same(await tally(s, hostOf(flaky.url)), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: N + 1, recorded: N + 1 }, 'every send counted and recorded')
  t.same(got.map((r) => r.headers['x-storehook-attempt']), ['1', '2', '3', '4'])
  t.ok(got.every((r) => r.body.equals(body)), 'every attempt carries the same bytes')
  t.ok(got.every((r) => r.headers['x-storehook-notification-id'] === json.id))
  const gaps = got.slice(1).map((r, i) => r.at - got[i]!.at)
  t.ok(gaps.every((g) => g >= 15), `retries wait for the backoff (gaps ${gaps.join(', ')} ms)`)
  t.equal(healthy.received.length, 1)
  t.same(await tally(s, hostOf(healthy.url)), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: 1, recorded: 1 })

  const attempts = (await s.facts.all<{ attempt: number; status_code: number; response_excerpt: string; duration_ms: number }>(sql`
    SELECT a.attempt, a.status_code, a.response_excerpt, a.duration_ms FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
     WHERE d.notification_id = ${json.id} AND d.target = ${new URL(flaky.url).host} ORDER BY a.id`))
  t.same(attempts.map((a) => [a.attempt, a.status_code]), [[1, 503], [2, 503], [3, 503], [4, 200]], 'every attempt is recorded')
  t.equal(attempts[0]!.response_excerpt, 'down for maintenance', 'with the start of the answer')
})

t.test('Retry-After in seconds is honoured', async (t) => {
  const target = await startTarget((_r, n, res) => {
    if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end()
    else res.writeHead(204).end()
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, RETRY_MAX_DELAY_MS: '5000' })
  const { json } = await s.post(v2Body())
  // The schedule is in the row from the moment the 429 is recorded: read it
  // there, not from how late the retry happened to come on a busy machine.
  const scheduled = async (): Promise<{ next_attempt_at: number; answered_at: number } | undefined> => await s.facts.get(sql`
    SELECT d.next_attempt_at, a.started_at + a.duration_ms AS answered_at FROM deliveries d JOIN attempts a ON a.delivery_id = d.id
     WHERE d.notification_id = ${json.id} AND d.lease_until IS NULL AND d.status = 'pending' AND a.attempt = 1`)
  await until(async () => (await scheduled()) !== undefined, 5000, 'the 429 to be recorded with its retry')
  const { next_attempt_at: due, answered_at: answered } = (await scheduled())!
  // The worker takes its clock a moment after the answer ends (the start is
  // Date.now(), the duration rounded from performance.now(): 2 ms of rounding).
  t.ok(due - answered >= 998 && due - answered < 1000 + 100, `retry scheduled ${due - answered} ms after the 429, Retry-After said 1 s`)
  await settled(s)
  const retried = (await s.facts.get<{ started_at: number }>(sql`SELECT started_at FROM attempts WHERE attempt = 2`))!
  t.ok(retried.started_at >= due, 'and not sent before it')
  t.equal(target.received.length, 2)
  t.same(await tally(s), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: 2, recorded: 2 })
})

t.test('a delivery still failing after RETRY_GIVE_UP_AFTER_MS is dead, kept and visible', async (t) => {
  const target = await startTarget((_r, _n, res) => { res.writeHead(500).end('boom') })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, RETRY_GIVE_UP_AFTER_MS: '300' })
  const { json } = await s.post(v2Body())
  await until(async () => (await deliveriesOf(s, json.id))[0]?.status === 'dead', 5000, 'dead delivery')
  const [d] = (await deliveriesOf(s, json.id))
  t.equal(d!.last_status_code, 500)
  t.equal(d!.last_error, 'HTTP 500')
  // A dead row is never claimed again (test/unit/store.test.ts): once no
  // send is open, the target's count is the row's.
  await settled(s)
  const count = target.received.length
  t.ok(count >= 2, `retried before giving up (${count} attempts)`)
  t.same(await tally(s), { deliveries: 1, delivered: 0, dead: 1, pending: 0, attempts: count, recorded: count }, 'every send counted and recorded')
  // The worker logs once its write resolves, which can be a moment after the
  // row reads dead from another connection: waited for, not read once.
  await until(() => s.logs.some((l) => l.includes('Delivery is dead')), 5000, 'the give-up log line')
  t.pass('the give-up is logged')

  // Replay brings it back with a fresh give-up clock: exactly one send more,
  // so any attempt made while it was dead would show here too.
  target.respond((_r, _n, res) => { res.writeHead(200).end() })
  await s.app.outbox.replay(json.id)
  await until(async () => (await deliveriesOf(s, json.id))[0]?.status === 'delivered', 5000, 'replayed delivery')
  await settled(s)
  t.equal(target.received.length, count + 1, 'replayed and delivered, once')
  t.same(await tally(s), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: count + 1, recorded: count + 1 })
})

t.test('redirects are not followed and count as failures', async (t) => {
  const elsewhere = await startTarget()
  t.teardown(elsewhere.close)
  const target = await startTarget((_r, n, res) => {
    if (n === 1) res.writeHead(302, { location: elsewhere.url }).end()
    else res.writeHead(200).end()
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const { json } = await s.post(v2Body())
  await target.waitFor(2)
  await until(async () => (await deliveriesOf(s, json.id))[0]?.status === 'delivered')
  t.equal(elsewhere.received.length, 0, 'the redirect target got nothing')
})

t.test('a target that does not answer times out and is retried', async (t) => {
  const target = await startTarget((_r, n, res) => {
    if (n === 1) return // never answers
    res.writeHead(200).end()
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, DELIVERY_TIMEOUT_MS: '300' })
  const { json } = await s.post(v2Body())
  await target.waitFor(2, 5000)
  await until(async () => (await deliveriesOf(s, json.id))[0]?.status === 'delivered')
  const errors = (await s.facts.all<{ error: string | null }>(sql`SELECT error FROM attempts ORDER BY id`))
  t.match(errors[0]!.error, /timeout after 300 ms/)
})

t.test('a refused connection is retried until the target comes up', async (t) => {
  const target = await startTarget()
  const url = target.url
  await target.close()
  const s = await startApp(t, { FORWARD_TARGETS: url })
  const { json } = await s.post(v2Body())
  await until(async () => ((await deliveriesOf(s, json.id))[0]?.attempts ?? 0) >= 2, 5000, 'two failed attempts')
  t.match((await deliveriesOf(s, json.id))[0]!.last_error, /ECONNREFUSED/)
  const back = await startTarget(undefined, '/hook', Number(new URL(url).port))
  t.teardown(back.close)
  await back.waitFor(1, 5000)
  await until(async () => (await deliveriesOf(s, json.id))[0]?.status === 'delivered')
  t.pass('delivered once the target listens again')
})

async function closedPort (): Promise<number> {
  const { createServer } = await import('node:net')
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

const count = async (s: Awaited<ReturnType<typeof startApp>>, query: ReturnType<typeof sql>): Promise<number> => (await s.facts.get<{ n: number }>(query))!.n

t.test('a target that is down is probed one delivery at a time, then gets everything once it is back', async (t) => {
  const port = await closedPort()
  const s = await startApp(t, { FORWARD_TARGETS: `http://127.0.0.1:${port}/hook` })
  const ids = (await Promise.all(Array.from({ length: 30 }, () => s.post(v2Body())))).map((r) => r.json.id as string)
  await until(() => s.logs.some((l) => l.includes('Target is failing')), 5000, 'the target taken as down')
  // Retries are due every 20-200 ms here and workers poll every 50 ms: sent
  // one by one, no due delivery would wait long. Probing leaves them due in
  // the stored schedule and unsent: wait for one overdue by half a second.
  const overdue = async (): Promise<number> => await count(s, sql`SELECT count(*) AS n FROM deliveries
    WHERE status = 'pending' AND lease_until IS NULL AND next_attempt_at < ${Date.now() - 500}`)
  await until(async () => (await overdue()) > 0, 10_000, 'a due delivery left unsent while the target is down')
  const attempts = await count(s, sql`SELECT count(*) AS n FROM attempts`)
  t.ok(attempts < 30, `fewer attempts than deliveries while the target is down (${attempts})`)
  t.equal(await count(s, sql`SELECT count(*) AS n FROM deliveries WHERE status = 'pending'`), 30, 'and nothing is given up or lost')

  const target = await startTarget(undefined, '/hook', port)
  t.teardown(target.close)
  await settled(s)
  t.equal(await count(s, sql`SELECT count(*) AS n FROM deliveries WHERE status = 'delivered'`), 30, 'all delivered')
  t.same(target.received.map((r) => r.headers['x-storehook-notification-id']).sort(), [...ids].sort(), 'each delivered once')
  t.ok(s.logs.some((l) => l.includes('Target answers again')), 'the recovery is logged')
})

t.test('deliveries to a target that stays down still give up on time, probed or not', async (t) => {
  const port = await closedPort()
  const s = await startApp(t, { FORWARD_TARGETS: `http://127.0.0.1:${port}/hook`, RETRY_GIVE_UP_AFTER_MS: '500' })
  await Promise.all(Array.from({ length: 20 }, () => s.post(v2Body())))
  await until(async () => (await count(s, sql`SELECT count(*) AS n FROM deliveries WHERE status = 'dead'`)) === 20, 10_000, 'all dead')
  const unprobed = await count(s, sql`SELECT count(*) AS n FROM deliveries WHERE last_error LIKE 'gave up: the target was failing%'`)
  t.ok(unprobed > 0, `some were given up without another attempt (${unprobed})`)
  // Logged when the writer's reply arrives, a moment after another connection can see the rows.
  const gaveUpLine = (l: string): boolean => l.includes('gave up while the target was failing')
  await until(() => s.logs.some(gaveUpLine), 5000, 'the give-up log line')
  t.ok(s.logs.some(gaveUpLine), 'and that is logged')
  const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text())
  t.match(metrics, new RegExp(`storehook_deliveries_total\\{target="127\\.0\\.0\\.1:${port}",outcome="dead"\\} 20\\n`), 'every death is counted, probed or not')
})
