// Every command refuses what it does not understand (issue 14 item 8): exit 2,
// one line naming the token, nothing changed in the database. Its own file:
// fifty child processes are more than tap's per-file time beside the other
// CLI tests, and they run a few at a time.
import { createHash } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { configFile, onPostgres, startApp, until } from '../helpers/app.ts'
import { openFacts, type Facts } from '../helpers/facts.ts'
import { v2Body } from '../helpers/notifications.ts'
import { NODE, runCli } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

// Runs fn over items, at most `width` at a time, keeping their order in the result.
async function inBatches<T, R> (items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += width) out.push(...await Promise.all(items.slice(i, i + width).map(fn)))
  return out
}

// Every row of every table, to show that a refused command changed nothing.
async function snapshot (facts: Facts): Promise<string> {
  const tables = await facts.all<{ name: string }>(onPostgres()
    ? sql`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`
    : sql`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
  const rows = []
  for (const { name } of tables) rows.push([name, await facts.all(sql`SELECT * FROM ${sql.identifier(name)} ORDER BY 1`)])
  // A body stands as its hash, to keep a failure's diff readable.
  const cell = (_k: string, v: unknown): unknown => (v as { type?: unknown })?.type === 'Buffer' ? createHash('sha256').update(Buffer.from((v as { data: number[] }).data)).digest('hex') : v
  return JSON.stringify(rows, cell, 1)
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
  await until(async () => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM deliveries WHERE status = 'dead'`))!.n === 2, 5000, 'dead deliveries')
  // Stopped, so that only the commands below could change the file.
  await s.close()
  const facts = openFacts(s.config)
  t.teardown(facts.close)
  const before = await snapshot(facts)
  // A replay that was understood would queue deliveries here: the dead ones, and to "main" again.
  t.match(before, /"status": ?"dead"/)

  // A command that starts a server instead of refusing is killed, and fails on its exit code.
  const cliEnv = { ...env, ...s.env, HOST: '127.0.0.1', PORT: '0', VERIFY_SIGNATURES: 'off' }
  // Each command with an unknown flag, and each kind of mistake at least once
  // (another command's flag, a stray argument, a missing value, a value for a
  // switch, a repeated flag). A child process costs over a second, so the
  // table is what it must prove, not every combination.
  const refused: Array<[args: string[], names: string]> = [
    [['--bogus'], '--bogus'],
    [['serve', '--bogus'], '--bogus'],
    [['migrate', '--bogus'], '--bogus'],
    [['status', '--bogus'], '--bogus'],
    [['status', '--to', 'x'], '--to'],
    [['status', 'extra'], 'extra'],
    [['replay', '--bogus'], '--bogus'],
    [['replay', '--type', 'REFUND', '--too', 'main'], '--too'],
    [['replay', '--since', '1h', '--type'], '--type'],
    [['replay', '--type', '--to', 'main'], '--type'],
    [['replay', '--type', 'REFUND', '--to', 'main', '--to', 'flaky'], '--to'],
    [['prune', '--bogus'], '--bogus'],
    [['compact', '--bogus'], '--bogus'],
    [['compact', 'extra'], 'extra'],
    [['quarantine', 'list', '--bogus'], '--bogus'],
    [['quarantine', 'release', '1', '--force=yes'], '--force'],
    [['quarantine', 'release'], 'release'],
    [['backfill', '--since', '1h', '--bogus'], '--bogus'],
    [['request-test-notification', '--bogus'], '--bogus'],
    [['copy', '--bogus'], '--bogus'],
    [['copy'], '--to'],
    [['copy', '--to', 'mysql://u:pw@h/db'], '--to'],
    [['copy', '--to', 'postgres://h/db', '--batch-size', '0'], '--batch-size'],
    [['help', 'status', 'extra'], 'extra'],
    [['bogus'], 'bogus']
  ]
  const answers = await inBatches(refused, 4, ([args]) => runCli(args, cliEnv, { ...NODE, timeoutMs: 20_000 }))
  for (const [i, [args, names]] of refused.entries()) {
    const r = answers[i]!
    const what = `storehook ${args.join(' ')}`
    t.equal(r.code, 2, `${what}: exit code 2 (${r.stderr.trim()})`)
    t.match(r.stderr, /^storehook[^\n]*\n$/, `${what}: one line`)
    t.ok(r.stderr.includes(names), `${what}: names ${names}`)
    t.equal(r.stdout, '', `${what}: no answer on stdout`)
    t.equal(await snapshot(facts), before, `${what}: nothing changed in the database`)
  }

  // Help and the version are still understood, before and after the command.
  const understood: Array<[args: string[], prints: RegExp]> = [
    [['--help'], /^storehook .*Usage: storehook <command>/s],
    [['replay', '--help'], /^Usage: storehook replay/],
    [['quarantine', 'release', '-h'], /^Usage: storehook quarantine/],
    [['help', 'backfill'], /^Usage: storehook backfill/],
    [['--help', 'prune'], /^Usage: storehook prune/],
    [['compact', '--help'], /^Usage: storehook compact/],
    [['copy', '--help'], /^Usage: storehook copy --to <postgres URL>.*Stop storehook first/s],
    [['--version'], /^\d+\.\d+\.\d+\n$/],
    [['status', '--version'], /^\d+\.\d+\.\d+\n$/]
  ]
  const helped = await inBatches(understood, 4, ([args]) => runCli(args, cliEnv, { ...NODE, timeoutMs: 20_000 }))
  for (const [i, [args, prints]] of understood.entries()) {
    const r = helped[i]!
    t.equal(r.code, 0, `storehook ${args.join(' ')}`)
    t.match(r.stdout, prints, `storehook ${args.join(' ')}`)
  }
  t.equal(await snapshot(facts), before, 'help and version touched nothing')
})
