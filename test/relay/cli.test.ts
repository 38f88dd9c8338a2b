import { sql } from 'drizzle-orm'
import t from 'tap'
import { configFile, startApp, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { runCli } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

t.test('status, replay by filter and to a new target, on the live database while the server runs', async (t) => {
  const main = await startTarget()
  const late = await startTarget()
  const flaky = await startTarget((_r, _n, res) => { res.writeHead(500).end() })
  for (const x of [main, late, flaky]) t.teardown(x.close)
  // "late" is a target added after the fact: its filter matched nothing until now.
  const config = configFile(t, {
    targets: [
      { name: 'main', url: main.url },
      { name: 'late', url: late.url, filters: { environments: ['Nowhere'] } },
      { name: 'flaky', url: flaky.url }
    ]
  })
  const env = { STOREHOOK_CONFIG: config, RETRY_GIVE_UP_AFTER_MS: '150', POLL_INTERVAL_MS: '50' }
  const s = await startApp(t, env)
  const cliEnv = { ...env, ...s.env }
  for (const e of ['Production', 'Sandbox', 'Production']) await s.post(v2Body({ environment: e }))
  await main.waitFor(3)
  await until(async () => (await fetch(`${s.url}/metrics`).then((r) => r.text())).includes('storehook_deliveries_total{target="flaky",outcome="dead"} 3'), 5000, 'dead deliveries')

  // The database gauges may lag a scrape by up to 5 s (metrics/plugin.ts).
  await until(async () => /storehook_outbox_dead\{target="flaky"\} 3/.test(await fetch(`${s.url}/metrics`).then((r) => r.text())), 15_000, 'the dead gauge counts them')
  const status = await runCli(['status'], cliEnv)
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /Last notification received:\n {2}Production +\d{4}-.* DID_RENEW\n {2}Sandbox /)
  t.match(status.stdout, /main: 0 pending, 0 dead, 3 delivered/)
  t.match(status.stdout, /flaky: 0 pending, 3 dead, 0 delivered.*\n.*last error HTTP 500/)

  const toLate = await runCli(['replay', '--since', '1h', '--environment', 'Production', '--to', 'late'], cliEnv)
  t.equal(toLate.code, 0, toLate.stderr)
  t.match(toLate.stdout, /Replayed 2 notification\(s\): 2 deliveries queued\./)
  await late.waitFor(2, 5000)
  t.ok(late.received.every((r) => r.headers['x-storehook-attempt'] === '1'), 'a first attempt for the new target')

  flaky.respond((_r, _n, res) => { res.writeHead(200).end() })
  const before = flaky.received.length
  const dead = await runCli(['replay', '--delivery-status', 'dead', '--target', 'flaky', '--to', 'flaky'], cliEnv)
  t.match(dead.stdout, /Replayed 3 notification\(s\): 3 deliveries queued\./)
  await flaky.waitFor(before + 3, 5000)
  t.equal(main.received.length, 3, 'replaying to one target leaves the others alone')

  t.equal((await runCli(['replay', '--since', 'yesterday-ish'], cliEnv)).code, 1)
  t.match((await runCli(['replay'], cliEnv)).stderr, /needs --id or at least one filter/)
  t.match((await runCli(['replay', '--to', 'nobody', '--since', '1h'], cliEnv)).stderr, /unknown target\(s\) nobody/)
  for (const cmd of ['status', 'replay', 'quarantine', 'migrate', 'serve']) {
    const help = await runCli([cmd, '--help'], cliEnv)
    t.match(help.stdout, new RegExp(`^Usage: storehook ${cmd}`), `${cmd} --help`)
  }
  t.match((await runCli(['--version'], {})).stdout, /^\d+\.\d+\.\d+\n$/)
})

t.test('bulk replay through the admin API', async (t) => {
  const target = await startTarget((_r, n, res) => { res.writeHead(n <= 2 ? 500 : 200).end() })
  t.teardown(target.close)
  const token = 'an-admin-token-of-enough-length'
  const s = await startApp(t, { FORWARD_TARGETS: target.url, RETRY_GIVE_UP_AFTER_MS: '1', ADMIN_TOKEN: token })
  await s.post(v2Body())
  await s.post(v2Body())
  await target.waitFor(2)
  const name = new URL(target.url).host
  const call = (body: unknown): Promise<Response> => fetch(`${s.url}/admin/api/replay`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await until(async () => {
    const r = await fetch(`${s.url}/admin/api/targets`, { headers: { authorization: `Bearer ${token}` } }).then((x) => x.json()) as { targets: Array<{ dead: number }> }
    return r.targets[0]!.dead === 2
  })
  const r = await call({ filter: { deliveryStatus: 'dead', target: name } })
  t.same(await r.json(), { notifications: 2, deliveries: 2, truncated: false })
  await target.waitFor(4, 5000)
  t.equal((await call({ filter: {} })).status, 400, 'an empty filter is refused: replaying everything takes a deliberate filter')
  t.equal((await call({ filter: { since: 0 }, targets: ['nobody'] })).status, 400)
})
