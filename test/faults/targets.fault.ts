// Target misbehaviour not already covered by test/relay/retry.test.ts (which
// has 302, 429 with Retry-After in seconds, a target that never answers, and
// refused connections). README: any non-2xx, timeout or connection error is
// retried; Retry-After (seconds or HTTP date) is honoured; 3xx is a failure;
// DELIVERY_TIMEOUT_MS bounds each request.
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

type App = Awaited<ReturnType<typeof startApp>>
interface AttemptRow { attempt: number; status_code: number | null; error: string | null; duration_ms: number }

const attemptsOf = (s: App): AttemptRow[] => s.db.all<AttemptRow>(sql`SELECT attempt, status_code, error, duration_ms FROM attempts ORDER BY id`)
const statusOf = (s: App, id: string): string | undefined => s.db.get<{ status: string }>(sql`SELECT status FROM deliveries WHERE notification_id = ${id}`)?.status

t.test('410 Gone is a failure like any non-2xx: retried, then delivered', async (t) => {
  const target = await startTarget((_r, n, res) => { res.writeHead(n === 1 ? 410 : 200).end(n === 1 ? 'gone' : 'ok') })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const { json } = await s.post(v2Body())
  await target.waitFor(2)
  await until(() => statusOf(s, json.id) === 'delivered')
  t.same(attemptsOf(s).map((a) => [a.attempt, a.status_code, a.error]), [[1, 410, 'HTTP 410'], [2, 200, null]])
})

t.test('301, 307 and 308 are not followed either', async (t) => {
  const elsewhere = await startTarget()
  t.teardown(elsewhere.close)
  const codes = [301, 307, 308]
  const target = await startTarget((_r, n, res) => {
    if (n <= codes.length) res.writeHead(codes[n - 1]!, { location: elsewhere.url }).end()
    else res.writeHead(200).end()
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const { json } = await s.post(v2Body())
  await target.waitFor(4, 5000)
  await until(() => statusOf(s, json.id) === 'delivered')
  t.same(attemptsOf(s).map((a) => a.status_code), [301, 307, 308, 200])
  t.equal(elsewhere.received.length, 0, 'the Location was never visited')
})

t.test('429 with Retry-After as an HTTP date is honoured', async (t) => {
  const target = await startTarget((_r, n, res) => {
    if (n === 1) res.writeHead(429, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }).end()
    else res.writeHead(200).end()
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, RETRY_MAX_DELAY_MS: '5000' })
  await s.post(v2Body())
  const [first, second] = await target.waitFor(2, 6000)
  const gap = second!.at - first!.at
  // An HTTP date has one-second resolution: 2 s ahead means 1-2 s from now.
  t.ok(gap >= 900, `second attempt ${gap} ms after the first, the date was ~2 s ahead`)
  t.ok(gap < 3000, 'and not much later')
})

t.test('a target that drips its headers is cut at DELIVERY_TIMEOUT_MS and retried', async (t) => {
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    const n = ++connections
    socket.once('data', () => {
      if (n === 1) {
        socket.write('HTTP/1.1 200 OK\r\n')
        const drip = setInterval(() => socket.write(`x-drip-${Date.now()}: 1\r\n`), 50)
        socket.on('close', () => clearInterval(drip))
        socket.on('error', () => clearInterval(drip))
      } else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
    })
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  const s = await startApp(t, { FORWARD_TARGETS: url, DELIVERY_TIMEOUT_MS: '400' })
  const { json } = await s.post(v2Body())
  await until(() => statusOf(s, json.id) === 'delivered', 10_000, 'delivered on the second connection')
  const [first, second] = attemptsOf(s)
  t.match(first!.error, /timeout after 400 ms/, 'the dripping answer timed out')
  t.ok(first!.duration_ms < 1500, `and was cut near the deadline (${first!.duration_ms} ms), not left to drip`)
  t.equal(second!.status_code, 200)
})

t.test('a 200 whose body drips forever frees the slot at the deadline; the 200 counts', async (t) => {
  const target = await startTarget((_r, _n, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    const drip = setInterval(() => res.write('.'), 50)
    res.on('close', () => clearInterval(drip))
  })
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, DELIVERY_TIMEOUT_MS: '400' })
  const { json } = await s.post(v2Body())
  await until(() => statusOf(s, json.id) === 'delivered', 5000)
  const [a] = attemptsOf(s)
  t.equal(a!.status_code, 200, 'the status is what counts')
  t.ok(a!.duration_ms < 1500, `the exchange ended near the deadline (${a!.duration_ms} ms)`)
  t.equal(target.received.length, 1, 'delivered once, not retried')
})
