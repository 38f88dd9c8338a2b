import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { startServer } from '../../src/server.ts'
import { sqliteOnly, startApp, tempDir, until } from '../helpers/app.ts'
import { scrape } from '../helpers/metrics.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'


t.test('/metrics exposes received, deliveries, pending and oldest pending', async (t) => {
  const down = await startTarget()
  const url = down.url
  await down.close()
  const up = await startTarget()
  t.teardown(up.close)
  const s = await startApp(t, { FORWARD_TARGETS: `${up.url},${url}`, RETRY_MIN_DELAY_MS: '5000', RETRY_MAX_DELAY_MS: '5000' })
  await s.post(v2Body({ environment: 'Production', notificationType: 'DID_RENEW' }))
  await s.post(v1Body())
  await s.post('{"signedPayload":"a.b.c"}')
  await up.waitFor(2)
  const downHost = new URL(url).host
  await until(async () => (await scrape(s.url)).includes(`storehook_deliveries_total{target="${downHost}",outcome="retry"} 2`), 5000, 'two failed attempts')
  // The database gauges may lag a scrape by up to 5 s (metrics/plugin.ts).
  await until(async () => (await scrape(s.url)).includes(`storehook_outbox_pending{target="${downHost}"} 2`), 15_000, 'the pending gauge')
  await until(async () => !(await scrape(s.url)).includes(`storehook_outbox_pending{target="${up.url.split('/')[2]}"}`), 15_000, 'the drained target gone from the gauge')
  const text = await scrape(s.url)
  t.match(text, /storehook_notifications_received_total\{version="2",environment="Production",type="DID_RENEW",verification="unchecked",outcome="stored"\} 1/)
  t.match(text, /storehook_notifications_received_total\{version="1",environment="Production",type="DID_RENEW",verification="unchecked",outcome="stored"\} 1/)
  t.match(text, new RegExp(`storehook_deliveries_total\\{target="${up.url.split('/')[2]}",outcome="delivered"\\} 2`))
  t.match(text, new RegExp(`storehook_outbox_pending\\{target="${downHost}"\\} 2`))
  t.match(text, new RegExp(`storehook_outbox_oldest_pending_seconds\\{target="${downHost}"\\} [0-9.]+`))
  t.notMatch(text, new RegExp(`storehook_outbox_pending\\{target="${up.url.split('/')[2]}"\\}`), 'a drained target has nothing pending')
  t.match(text, /storehook_delivery_duration_seconds_bucket/)
  t.match(text, /storehook_last_received_timestamp_seconds\{environment="Production"\} \d+/)
  t.match(text, /storehook_quarantine_items 0/)
  t.match(text, /storehook_database_bytes \d+/)
  t.notMatch(text, /storehook_outbox_dead\{[^}]*\} [1-9]/, 'nothing is dead yet')
  t.notMatch(text, /token|secret/i)
})

t.test('a target URL\'s path and query (where tokens live) never reach /metrics, only its name', async (t) => {
  const s = await startApp(t, { FORWARD_TARGETS: 'http://127.0.0.1:1/path-secret-abc/hook?token=query-secret-xyz', RETRY_MIN_DELAY_MS: '5000', RETRY_MAX_DELAY_MS: '5000' })
  await s.post(v1Body())
  await until(async () => (await scrape(s.url)).includes('storehook_deliveries_total{target="127.0.0.1:1",outcome="retry"} 1'), 5000, 'a failed attempt')
  t.notMatch(await scrape(s.url), /path-secret|query-secret|token=/)
})

// Security review, finding 9: /metrics names targets; an operator can close it.
const METRICS_TOKEN = 'metrics-token-0123456789'

t.test('METRICS_TOKEN: /metrics asks for the bearer token, in constant time, with a JSON 401', async (t) => {
  const s = await startApp(t, { METRICS_TOKEN })
  const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: METRICS_TOKEN }, { authorization: `Basic ${METRICS_TOKEN}` }]
  for (const headers of wrong) {
    const res = await fetch(`${s.url}/metrics`, { headers })
    t.equal(res.status, 401, JSON.stringify(headers))
    t.same(await res.json(), { error: 'Missing or wrong bearer token.', code: 'UNAUTHORIZED' })
  }
  const res = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.equal(res.status, 200)
  t.match(await res.text(), /storehook_notifications_received_total/)
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'the rest needs no token')
  t.equal((await s.post(v1Body())).status, 200, 'Apple needs no token')
  t.notOk(s.logs.join('').includes(METRICS_TOKEN), 'the token is never logged')
})

t.test('without METRICS_TOKEN nor METRICS_PORT, /metrics stays public (the default is unchanged)', async (t) => {
  const s = await startApp(t)
  t.equal((await fetch(`${s.url}/metrics`)).status, 200)
})

function metricsUrl (logs: string[]): string {
  const m = /Metrics listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs.join(''))
  if (m === null) throw new Error('no metrics listener in the logs')
  return m[1]!
}

t.test('METRICS_PORT: /metrics only on its own listener, which serves nothing else and closes with the app', async (t) => {
  const s = await startApp(t, { HOST: '127.0.0.1', METRICS_PORT: '0' })
  const side = metricsUrl(s.logs)
  t.not(side, s.url)
  await s.post(v1Body({ type: 'DID_RENEW' }))
  const text = await (await fetch(`${side}/metrics`)).text()
  t.match(text, /storehook_notifications_received_total\{version="1",environment="Production",type="DID_RENEW"/)
  const off = await fetch(`${s.url}/metrics`)
  t.equal(off.status, 404, 'the public listener has no /metrics')
  t.same(await off.json(), { error: 'Not found.', code: 'NOT_FOUND' })
  for (const [method, path] of [['GET', '/healthz'], ['GET', '/admin/api/notifications'], ['POST', '/apple/notifications'], ['GET', '/metrics/x']] as const) {
    const res = await fetch(`${side}${path}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? v1Body() : undefined })
    t.equal(res.status, 404, `${method} ${path} is not served there`)
    t.same(await res.json(), { error: 'Not found.', code: 'NOT_FOUND' })
  }
  await s.close()
  await t.rejects(fetch(`${side}/metrics`), 'closed with the app')
})

t.test('METRICS_PORT with METRICS_TOKEN: the private listener asks for the token too', async (t) => {
  const s = await startApp(t, { HOST: '127.0.0.1', METRICS_PORT: '0', METRICS_TOKEN })
  const side = metricsUrl(s.logs)
  const refused = await fetch(`${side}/metrics`)
  t.equal(refused.status, 401)
  t.same(await refused.json(), { error: 'Missing or wrong bearer token.', code: 'UNAUTHORIZED' })
  t.equal((await fetch(`${side}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 200)
})

t.test('a METRICS_PORT already taken stops the start, and what had started is closed', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = (taken.address() as AddressInfo).port
  // startServer, as `storehook serve` runs it: it must close what started
  // (the writer thread would keep the process alive), or this test hangs.
  const config = loadConfig({ DATABASE_PATH: join(tempDir(t), 'x.db'), HOST: '127.0.0.1', PORT: '0', METRICS_PORT: String(port), LOG_LEVEL: 'silent' })
  await t.rejects(startServer(config), { code: 'EADDRINUSE' })
})

// /metrics is public and its gauges are aggregates over the whole outbox, run
// on the main thread: a crowd of scrapes must share one read of the database,
// and the values still follow the database after the refresh interval.
t.test('concurrent scrapes share one read of the database gauges, which still follow the database', sqliteOnly('it counts the statements on the SQLite connection the gauges read'), async (t) => {
  const down = await startTarget()
  const url = down.url
  await down.close()
  const s = await startApp(t, { FORWARD_TARGETS: url, RETRY_MIN_DELAY_MS: '60000', RETRY_MAX_DELAY_MS: '60000' })
  const host = new URL(url).host
  await s.post(v2Body())
  await until(async () => (await scrape(s.url)).includes(`storehook_outbox_pending{target="${host}"} 1`), 15_000, 'one pending')

  // Count the statements the gauges run, on the very connection they use.
  const db = s.db
  let reads = 0
  const all = db.all.bind(db)
  const get = db.get.bind(db)
  db.all = ((query: unknown) => { reads++; return all(query as never) }) as typeof db.all
  db.get = ((query: unknown) => { reads++; return get(query as never) }) as typeof db.get
  t.teardown(() => { db.all = all; db.get = get })
  const texts = await Promise.all(Array.from({ length: 50 }, async () => scrape(s.url)))
  t.ok(reads <= 4, `50 scrapes ran ${reads} statement(s): one read of the 4 gauge queries at most`)
  t.ok(texts.every((x) => x.includes(`storehook_outbox_pending{target="${host}"} 1`)), 'every scrape has the value')
  t.match(texts[0], /# HELP storehook_outbox_pending .*at most every 5 s/, 'the help says how old it may be')

  await s.post(v2Body())
  await until(async () => (await scrape(s.url)).includes(`storehook_outbox_pending{target="${host}"} 2`), 15_000, 'the new value after the interval')
})
