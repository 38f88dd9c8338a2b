import { createHash } from 'node:crypto'
import Database from 'better-sqlite3'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { configFile, startApp, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { NODE, runCli } from '../helpers/process.ts'
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
  const cliEnv = { ...env, DATABASE_PATH: s.config.databasePath }
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

// Every row of every table, to show that a refused command changed nothing.
function snapshot (path: string): string {
  const db = new Database(path, { readonly: true })
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>
    // A body stands as its hash, to keep a failure's diff readable.
    const cell = (_k: string, v: unknown): unknown => (v as { type?: unknown })?.type === 'Buffer' ? createHash('sha256').update(Buffer.from((v as { data: number[] }).data)).digest('hex') : v
    return JSON.stringify(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]), cell, 1)
  } finally {
    db.close()
  }
}

t.test('every command refuses an unknown flag, another command\'s flag, a stray argument and a missing value: exit 2, one line naming it, nothing changed', async (t) => {
  const main = await startTarget()
  const flaky = await startTarget((_r, _n, res) => { res.writeHead(500).end() })
  for (const x of [main, flaky]) t.teardown(x.close)
  const config = configFile(t, { targets: [{ name: 'main', url: main.url }, { name: 'flaky', url: flaky.url }] })
  const env = { STOREHOOK_CONFIG: config, RETRY_GIVE_UP_AFTER_MS: '1' }
  const s = await startApp(t, env)
  for (const e of ['Production', 'Sandbox']) await s.post(v2Body({ environment: e, notificationType: 'REFUND' }))
  await main.waitFor(2)
  await until(() => s.app.database.db.get<{ n: number }>(sql`SELECT count(*) AS n FROM deliveries WHERE status = 'dead'`)!.n === 2, 5000, 'dead deliveries')
  // Stopped, so that only the commands below could change the file.
  await s.close()
  const path = s.config.databasePath
  const before = snapshot(path)
  // A replay that was understood would queue deliveries here: the dead ones, and to "main" again.
  t.match(before, /"status": ?"dead"/)

  // A command that starts a server instead of refusing is killed, and fails on its exit code.
  const cliEnv = { ...env, DATABASE_PATH: path, HOST: '127.0.0.1', PORT: '0', VERIFY_SIGNATURES: 'off' }
  const refused: Array<[args: string[], names: string]> = [
    [['--bogus'], '--bogus'],
    [['serve', '--bogus'], '--bogus'],
    [['serve', '--to', 'main'], '--to'],
    [['serve', 'extra'], 'extra'],
    [['migrate', '--bogus'], '--bogus'],
    [['migrate', '--force'], '--force'],
    [['migrate', 'extra'], 'extra'],
    [['status', '--bogus'], '--bogus'],
    [['status', '--to', 'x'], '--to'],
    [['status', 'extra'], 'extra'],
    [['status', '-x'], '-x'],
    [['status', '--limit'], '--limit'],
    [['replay', '--bogus'], '--bogus'],
    [['replay', '--type', 'REFUND', '--too', 'main'], '--too'],
    [['replay', '--type', 'REFUND', '--limit', '5'], '--limit'],
    [['replay', '--type', 'REFUND', 'extra'], 'extra'],
    [['replay', '--since', '1h', '--type'], '--type'],
    [['replay', '--type', '--to', 'main'], '--type'],
    [['replay', '--type', 'REFUND', '--to', 'main', '--to', 'flaky'], '--to'],
    [['prune', '--bogus'], '--bogus'],
    [['prune', '--since', '1h'], '--since'],
    [['prune', 'extra'], 'extra'],
    [['quarantine', '--bogus'], '--bogus'],
    [['quarantine', 'extra'], 'extra'],
    [['quarantine', 'list', '--bogus'], '--bogus'],
    [['quarantine', 'list', '--force'], '--force'],
    [['quarantine', 'list', 'extra'], 'extra'],
    [['quarantine', 'list', '--limit'], '--limit'],
    [['quarantine', 'release', '1', '--bogus'], '--bogus'],
    [['quarantine', 'release', '1', '--limit', '5'], '--limit'],
    [['quarantine', 'release', '1', 'extra'], 'extra'],
    [['quarantine', 'release', '1', '--force=yes'], '--force'],
    [['quarantine', 'release'], 'release'],
    [['backfill', '--since', '1h', '--bogus'], '--bogus'],
    [['backfill', '--since', '1h', '--to', 'main'], '--to'],
    [['backfill', '--since', '1h', 'extra'], 'extra'],
    [['backfill', '--since'], '--since'],
    [['backfill', '--since', '1h', '--until'], '--until'],
    [['request-test-notification', '--bogus'], '--bogus'],
    [['request-test-notification', '--since', '1h'], '--since'],
    [['request-test-notification', 'extra'], 'extra'],
    [['request-test-notification', '--environment'], '--environment'],
    [['help', 'status', 'extra'], 'extra'],
    [['bogus'], 'bogus']
  ]
  for (const [args, names] of refused) {
    const r = await runCli(args, cliEnv, { ...NODE, timeoutMs: 10_000 })
    const what = `storehook ${args.join(' ')}`
    t.equal(r.code, 2, `${what}: exit code 2 (${r.stderr.trim()})`)
    t.match(r.stderr, /^storehook[^\n]*\n$/, `${what}: one line`)
    t.ok(r.stderr.includes(names), `${what}: names ${names}`)
    t.equal(r.stdout, '', `${what}: no answer on stdout`)
    t.equal(snapshot(path), before, `${what}: nothing changed in the database`)
  }

  // Help and the version are still understood, before and after the command.
  const understood: Array<[args: string[], prints: RegExp]> = [
    [['--help'], /^storehook .*Usage: storehook <command>/s],
    [['replay', '--help'], /^Usage: storehook replay/],
    [['quarantine', 'release', '-h'], /^Usage: storehook quarantine/],
    [['help', 'backfill'], /^Usage: storehook backfill/],
    [['--help', 'prune'], /^Usage: storehook prune/],
    [['--version'], /^\d+\.\d+\.\d+\n$/],
    [['status', '--version'], /^\d+\.\d+\.\d+\n$/]
  ]
  for (const [args, prints] of understood) {
    const r = await runCli(args, cliEnv, { ...NODE, timeoutMs: 10_000 })
    t.equal(r.code, 0, `storehook ${args.join(' ')}`)
    t.match(r.stdout, prints, `storehook ${args.join(' ')}`)
  }
  t.equal(snapshot(path), before, 'help and version touched nothing')
})
