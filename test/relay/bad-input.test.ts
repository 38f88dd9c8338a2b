import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp } from '../helpers/app.ts'
import { settled, tally } from '../helpers/facts.ts'
import { v1Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'
import { dial, portOf } from '../helpers/sockets.ts'

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

t.test('every kind of bad input gets a clear 4xx JSON error and is never stored or forwarded', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url, BODY_LIMIT_BYTES: '4096' })
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, Buffer | string, Record<string, string>, number, string]> = [
    ['not JSON', '{"signedPayload": ', json, 400, 'BODY_NOT_JSON'],
    ['empty body', '', json, 400, 'BODY_EMPTY'],
    ['JSON array', '[1,2,3]', json, 400, 'BODY_NOT_NOTIFICATION'],
    ['JSON string', '"hello"', json, 400, 'BODY_NOT_NOTIFICATION'],
    ['null', 'null', json, 400, 'BODY_NOT_NOTIFICATION'],
    ['object of neither shape', '{"hello":"world"}', json, 400, 'BODY_NOT_NOTIFICATION'],
    ['signedPayload not a string', '{"signedPayload": 42}', json, 400, 'BODY_NOT_NOTIFICATION'],
    ['signedPayload not a JWS', '{"signedPayload": "not-a-jws"}', json, 400, 'PAYLOAD_NOT_JWS'],
    ['JWS header not JSON', `{"signedPayload": "${b64('nope')}.${b64({ notificationType: 'TEST' })}.sig"}`, json, 400, 'PAYLOAD_NOT_JWS'],
    ['JWS payload not JSON', `{"signedPayload": "${b64({ alg: 'ES256' })}.${b64('nope')}.sig"}`, json, 400, 'PAYLOAD_MALFORMED'],
    ['JWS payload without notificationType', `{"signedPayload": "${b64({ alg: 'ES256' })}.${b64({ data: {} })}.sig"}`, json, 400, 'PAYLOAD_MALFORMED'],
    ['body over the limit', `{"notification_type":"DID_RENEW","x":"${'a'.repeat(5000)}"}`, json, 413, 'BODY_TOO_LARGE'],
    ['text/plain', '{"notification_type":"DID_RENEW"}', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['form', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no content type', '{"notification_type":"DID_RENEW"}', {}, 415, 'UNSUPPORTED_MEDIA_TYPE']
  ]
  for (const [name, body, headers, status, code] of cases) {
    const res = await fetch(`${s.url}/apple/notifications`, { method: 'POST', body, headers })
    const text = await res.text()
    t.equal(res.status, status, `${name}: ${status}`)
    t.match(res.headers.get('content-type'), /^application\/json/, `${name}: JSON answer`)
    const parsed = JSON.parse(text) as { error: string; code: string }
    t.equal(parsed.code, code, `${name}: ${code}`)
    t.ok(typeof parsed.error === 'string' && parsed.error.length > 10, `${name}: says what is wrong ("${parsed.error}")`)
  }
  const rows = (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))
  t.equal(rows!.n, 0, 'nothing refused was stored')
  // Forwarding needs a delivery row: none means nothing can ever be sent.
  t.same(await tally(s), { deliveries: 0, delivered: 0, dead: 0, pending: 0, attempts: 0, recorded: 0 }, 'no delivery to send')
  t.equal(target.received.length, 0, 'nothing refused was forwarded')

  const health = await fetch(`${s.url}/healthz`)
  t.equal(health.status, 200, 'still healthy after all that')
  const missing = await fetch(`${s.url}/nope`)
  t.equal(missing.status, 404)
  t.same(await missing.json(), { error: 'Not found.', code: 'NOT_FOUND' })
})

t.test('bodies nested deeper than 64 levels are refused with 400 BODY_TOO_DEEP, never stored or forwarded', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const MB = 1_048_576
  const arrays = (n: number): string => '['.repeat(n) + ']'.repeat(n)
  const header = b64({ alg: 'ES256' })
  const cases: Array<[string, string]> = [
    ['V1 with 100,000 levels (the review\'s case)', `{"notification_type":"DID_RENEW","x":${arrays(100_000)}}`],
    ['V1 with 65 levels', `{"notification_type":"DID_RENEW","x":${arrays(64)}}`],
    ['1 MB of "["', '['.repeat(MB)],
    ['V1 filled to 1 MB with "["', `{"notification_type":"DID_RENEW","x":${'['.repeat(MB - 40)}`],
    ['signedPayload whose payload nests 300,000 levels', `{"signedPayload":"${header}.${b64(`{"notificationType":"TEST","data":${arrays(300_000)}}`)}.sig"}`]
  ]
  for (const [name, body] of cases) {
    t.ok(body.length <= MB, `${name}: within the body limit (${body.length} bytes)`)
    const res = await s.post(body)
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.json?.code, 'BODY_TOO_DEEP', `${name}: BODY_TOO_DEEP`)
    t.match(res.json?.error, /nested deeper than 64 levels/, `${name}: the reason names the limit`)
  }
  // A good one afterwards: it is the only one stored, and the only one the
  // target gets (it would have come after any refused one).
  const good = await s.post(v1Body())
  t.equal(good.status, 200, 'a well-formed notification is still accepted')
  const [got] = await target.waitFor(1)
  t.equal(got!.headers['x-storehook-notification-id'], good.json.id, 'the target got the good one first')
  const rows = (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))
  t.equal(rows!.n, 1, 'nothing refused was stored')
  await settled(s)
  t.same(await tally(s), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: 1, recorded: 1 }, 'one delivery, sent once')
  t.equal(target.received.length, 1, 'nothing refused was forwarded')
})

t.test('/healthz and /readyz answer 200 on a migrated, writable database', async (t) => {
  const s = await startApp(t)
  const h = await fetch(`${s.url}/healthz`)
  t.equal(h.status, 200)
  t.same(await h.json(), { status: 'ok' })
  const r = await fetch(`${s.url}/readyz`)
  t.equal(r.status, 200)
  t.same(await r.json(), { status: 'ready' })
})

// Errors Fastify raises before routing (a URL that does not decode, a path
// parameter over its length) answer from the one table too, never in
// Fastify's own shape and never echoing the path. fetch cannot send such a
// URL: a raw socket does.
t.test('a URL that does not decode, or a path parameter too long, gets BAD_REQUEST without the path echoed', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN: 'x'.repeat(32) })
  const paths = [
    '/apple/notifications/%E0%A4%A<script>',
    '/apple/notifications%E0%A4%A',
    `/admin/api/notifications/${'<script>'.repeat(20)}`
  ]
  for (const path of paths) {
    const c = dial(portOf(s.url))
    t.teardown(() => c.socket.destroy())
    c.socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`)
    const raw = await c.waitFor(/\r\n\r\n[\s\S]*\}/, 5000, `an answer to ${path}`)
    const [head, body] = raw.split('\r\n\r\n') as [string, string]
    t.match(head, /^HTTP\/1\.1 400 /, `${path}: 400`)
    t.match(head, /content-type: application\/json/i, `${path}: JSON`)
    t.same(JSON.parse(body), { error: 'Bad request.', code: 'BAD_REQUEST' }, `${path}: the table's answer`)
    t.notMatch(raw, /script|FST_ERR|E0%A4/i, `${path}: neither the path nor Fastify's code is echoed`)
  }
  t.notMatch(s.logs.join(''), /<script>/, 'nor is the path logged')
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'still answering')
})
