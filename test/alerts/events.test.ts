// Each alert event triggered for real (issue 17), thresholds shortened
// through the configuration: a target that answers 500 then 200,
// deliveries given up, silence after a first notification, a quarantined
// payload; one alert per episode across a restart and across two instances
// on one PostgreSQL database. Alerts are received by a local HTTP receiver
// in the JSON format; destinations.test.ts checks the other formats.
import Database from 'better-sqlite3'
import t from 'tap'
import type { AlertEvent } from '../../src/db/vocabulary.ts'
import { failingSince } from '../../src/alerts/episodes.ts'
import { sqliteOnly, startApp, until, type TestApp } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { freshDatabase, postgresUnavailable, startPostgres } from '../helpers/postgres.ts'
import { startTarget, type Target } from '../helpers/target.ts'

type T = Parameters<typeof startApp>[0]

const events = (rx: Target): AlertEvent[] => rx.received.map((r) => JSON.parse(r.body.toString('utf8')).event)
const alert = (rx: Target, i: number): any => JSON.parse(rx.received[i]!.body.toString('utf8'))

async function receiver (t: T): Promise<Target> {
  const rx = await startTarget(undefined, '/alerts')
  t.teardown(rx.close)
  return rx
}

// A target whose URL carries a token, answering 500 until told otherwise.
async function failingTarget (t: T): Promise<Target & { up: () => void }> {
  const target = await startTarget((_r, _n, res) => { res.writeHead(500).end('down') }, '/hook?token=SECRETtarget')
  t.teardown(target.close)
  return Object.assign(target, { up: () => { target.respond((_r, _n, res) => { res.writeHead(200).end() }) } })
}

const FAST = { ALERT_CHECK_INTERVAL_MS: '50', ALERT_TARGET_FAILING_AFTER_MS: '300' }

async function sent (s: TestApp, n: number): Promise<void> {
  await until(async () => (await s.app.outbox.alertHistory(50)).filter((m) => m.status === 'sent').length >= n, 10_000, `${n} alert(s) recorded as sent`)
}

t.test('target.failing once its every attempt failed for ALERT_TARGET_FAILING_AFTER_MS, target.recovered when it answers; never its URL', async (t) => {
  const rx = await receiver(t)
  const target = await failingTarget(t)
  const s = await startApp(t, { ...FAST, FORWARD_TARGETS: target.url, ALERT_URLS: rx.url, PUBLIC_URL: 'https://hook.example.com' })
  const name = s.config.targets[0]!.name
  t.equal((await s.post(v2Body())).status, 200)
  await rx.waitFor(1)
  t.match(alert(rx, 0), { event: 'target.failing', severity: 'critical', subject: name, link: 'https://hook.example.com/admin', facts: { pending: 1 } })
  t.ok(alert(rx, 0).facts.failingForMs >= 300, 'not before the threshold')
  await target.waitFor(3)
  target.up()
  await rx.waitFor(2)
  t.same(events(rx), ['target.failing', 'target.recovered'], 'one alert when it started, one when it ended, none between')
  t.match(alert(rx, 1), { severity: 'info', subject: name, text: new RegExp(`^Target ${name.replace(/\./g, '\\.')} answers again after`) })
  t.ok(rx.received.every((r) => !r.body.includes('SECRET') && !r.body.includes('token=')), 'the target\'s URL and token are in no alert')
  t.same((await s.app.alerts.monitor.check()), [], 'nothing more to tell')
})

t.test('deliveries.dead: grouped, one alert per target per window with the count; the next window tells what came since', async (t) => {
  const rx = await receiver(t)
  const target = await failingTarget(t)
  // The monitor's own timer stays out of the way: the test runs its rounds.
  const s = await startApp(t, { ALERT_CHECK_INTERVAL_MS: '3600000', RETRY_GIVE_UP_AFTER_MS: '150', FORWARD_TARGETS: target.url, ALERT_URLS: rx.url })
  const name = s.config.targets[0]!.name
  for (let i = 0; i < 3; i++) await s.post(v2Body())
  await until(async () => (await s.app.outbox.targetHealth(name)).dead === 3, 10_000, 'three dead deliveries')
  t.match(await s.app.alerts.monitor.check(), [{ kind: 'open', event: 'deliveries.dead', subject: name, facts: { count: 3 } }])
  await rx.waitFor(1)
  t.match(alert(rx, 0), { event: 'deliveries.dead', severity: 'warning', subject: name, text: /^3 deliveries to .* given up in the last/ })
  for (let i = 0; i < 2; i++) await s.post(v2Body())
  await until(async () => (await s.app.outbox.targetHealth(name)).dead === 5, 10_000, 'five dead deliveries')
  t.same(await s.app.alerts.monitor.check(), [], 'within the window: nothing more')
  t.match(await s.app.alerts.monitor.check(Date.now() + 3_600_000), [{ kind: 'close', event: 'deliveries.dead', tell: null }], 'the window ends without a word')
  t.match(await s.app.alerts.monitor.check(), [{ kind: 'open', event: 'deliveries.dead', facts: { count: 2 } }], 'the next tells the two that died since')
  await rx.waitFor(2)
  t.same(events(rx), ['deliveries.dead', 'deliveries.dead'])
})

t.test('apple.silent after a first Production notification and ALERT_APPLE_SILENT_AFTER_MS of nothing; apple.resumed when one arrives', async (t) => {
  const rx = await receiver(t)
  const s = await startApp(t, { ALERT_CHECK_INTERVAL_MS: '3600000', ALERT_APPLE_SILENT_AFTER_MS: '200', ALERT_URLS: rx.url })
  await s.post(v2Body({ environment: 'Sandbox' }))
  t.same(await s.app.alerts.monitor.check(Date.now() + 10_000), [], 'no Production notification ever: nothing is silent yet, and Sandbox is not watched')
  await s.post(v2Body({ environment: 'Production' }))
  t.same(await s.app.alerts.monitor.check(), [], 'just arrived')
  await until(async () => (await s.app.alerts.monitor.check()).length === 1, 10_000, 'apple.silent')
  await rx.waitFor(1)
  t.match(alert(rx, 0), { event: 'apple.silent', severity: 'critical', subject: 'Production', text: /Check the URL in App Store Connect/ })
  t.same(await s.app.alerts.monitor.check(), [], 'told once')
  await s.post(v2Body({ environment: 'Production' }))
  t.match(await s.app.alerts.monitor.check(), [{ kind: 'close', event: 'apple.silent', tell: { event: 'apple.resumed' } }])
  await rx.waitFor(2)
  t.same(events(rx), ['apple.silent', 'apple.resumed'])
})

t.test('quarantine.received: a refused payload that was a well-formed JWS (a bundle ID not listed) is told, grouped', async (t) => {
  const rx = await receiver(t)
  const s = await startApp(t, { ...FAST, APPLE_BUNDLE_IDS: 'com.example.app', ALERT_URLS: rx.url })
  t.equal((await s.post(v2Body({ bundleId: 'com.forged.app' }))).status, 403)
  t.equal((await s.post(v2Body({ bundleId: 'com.forged.app' }))).status, 403)
  await rx.waitFor(1)
  t.match(alert(rx, 0), { event: 'quarantine.received', severity: 'warning', subject: 'quarantine', facts: { count: /^[12]$/ } })
  t.notMatch(rx.received[0]!.body.toString(), /forged/, 'nothing a sender chose is repeated')
})

t.test('storage.failing when the database refuses writes, told at once without it; storage.recovered when it takes them again', sqliteOnly('the writes are refused by another connection locking the file'), async (t) => {
  const rx = await receiver(t)
  const s = await startApp(t, { ALERT_CHECK_INTERVAL_MS: '3600000', DATABASE_BUSY_TIMEOUT_MS: '100', ALERT_URLS: rx.url })
  const other = new Database(s.config.databasePath)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  t.equal((await s.post(v2Body())).status, 503, 'Apple is answered 503')
  // No round is due for an hour: the 503 itself starts one.
  await rx.waitFor(1)
  t.pass('the 503 to Apple made the monitor check at once')
  t.match(alert(rx, 0), { event: 'storage.failing', severity: 'critical', text: /Writes to the database are failing/ })
  t.same(await s.app.alerts.monitor.check(), [], 'told once per outage')
  other.exec('ROLLBACK')
  await s.app.alerts.monitor.check()
  await rx.waitFor(2)
  t.match(alert(rx, 1), { event: 'storage.recovered', severity: 'info', subject: 'writes', facts: { downForMs: /^\d+$/ } })
  t.equal((await s.post(v2Body())).status, 200)
  t.same(await s.app.alerts.monitor.check(), [])
  t.same(events(rx), ['storage.failing', 'storage.recovered'])
})

t.test('one alert per episode across a restart: an open episode is neither told again nor forgotten', async (t) => {
  const rx = await receiver(t)
  const target = await failingTarget(t)
  const env = { ...FAST, FORWARD_TARGETS: target.url, ALERT_URLS: rx.url }
  const first = await startApp(t, env)
  await first.post(v2Body())
  await rx.waitFor(1)
  await sent(first, 1)
  await first.close()
  const second = await startApp(t, { ...env, DATABASE_PATH: first.config.databasePath })
  t.same(await second.app.alerts.monitor.check(), [], 'still open after the restart: nothing to tell')
  target.up()
  await rx.waitFor(2)
  t.same(events(rx), ['target.failing', 'target.recovered'], 'the restarted instance told the end of the episode the first one opened')
  t.same((await second.app.outbox.alertHistory(10)).map((m) => m.event), ['target.recovered', 'target.failing'])
})

t.test('two instances on one PostgreSQL database: one alert per episode in all', { skip: postgresUnavailable() ?? false }, async (t) => {
  const cluster = await startPostgres()
  t.teardown(() => cluster.stop())
  const url = await freshDatabase(cluster)
  const rx = await receiver(t)
  const target = await failingTarget(t)
  // The timers stay out of the way: both instances decide at once, past
  // the lock their timers take turns with, so only the index stands between
  // them and two alerts.
  const env = { ALERT_CHECK_INTERVAL_MS: '3600000', ALERT_TARGET_FAILING_AFTER_MS: '300', FORWARD_TARGETS: target.url, ALERT_URLS: rx.url, DATABASE_URL: url }
  const a = await startApp(t, env)
  const b = await startApp(t, env)
  const name = a.config.targets[0]!.name
  await a.post(v2Body())
  await until(async () => {
    const since = failingSince(await a.app.outbox.targetHealth(name))
    return since !== null && Date.now() - since >= 300
  }, 10_000, 'the target failing for the threshold')
  const both = await Promise.all([a.app.alerts.monitor.check(), b.app.alerts.monitor.check()])
  t.same(both.flat().map((c) => [c.kind, c.event]), [['open', 'target.failing']], 'one of the two opened the episode')
  await rx.waitFor(1)
  target.up()
  const closed: unknown[] = []
  await until(async () => {
    closed.push(...(await Promise.all([a.app.alerts.monitor.check(), b.app.alerts.monitor.check()])).flat())
    return closed.length > 0
  }, 10_000, 'the recovery seen')
  t.equal(closed.length, 1, 'one of the two closed it')
  await rx.waitFor(2)
  const history = await a.app.outbox.alertHistory(10)
  t.same(history.map((m) => m.event), ['target.recovered', 'target.failing'], 'one message per edge in the shared database')
  await sent(a, 2)
  t.same(events(rx), ['target.failing', 'target.recovered'])
})

t.test('storage.failing when PostgreSQL is unreachable, told without it; storage.recovered once it is back', { skip: postgresUnavailable() ?? false }, async (t) => {
  const cluster = await startPostgres()
  t.teardown(() => cluster.stop())
  const rx = await receiver(t)
  const s = await startApp(t, { ALERT_CHECK_INTERVAL_MS: '3600000', ALERT_URLS: rx.url, DATABASE_URL: await freshDatabase(cluster) })
  await cluster.restart(async () => {
    await s.app.alerts.monitor.check()
    await rx.waitFor(1)
    t.match(alert(rx, 0), { event: 'storage.failing', subject: 'writes' })
    t.same(await s.app.alerts.monitor.check(), [], 'told once per outage')
  })
  await until(async () => { await s.app.alerts.monitor.check(); return rx.received.length === 2 }, 15_000, 'storage.recovered')
  t.same(events(rx), ['storage.failing', 'storage.recovered'])
})
