// The HTTP-level scenarios every way of running storehook must pass (the
// single binary, Deno): a real process on a new database (a SQLite file, or
// a PostgreSQL database on a throwaway cluster), real targets on 127.0.0.1,
// SIGKILL and restart. They are scripts rather than tap files:
// each needs something `npm test` must not (a two-minute binary build, the
// Deno runtime), so .ci/run runs them after `npm test` and adds their counts.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { freshDatabase, postgresUnavailable, startPostgres } from '../helpers/postgres.ts'
import { runCli, spawnServer, type Runner, type ServerProcess } from '../helpers/process.ts'
import { startTarget, type Target } from '../helpers/target.ts'

export interface Results {
  passed: number
  failed: number
  measured: Record<string, number>
}

type Check = (name: string, ok: boolean, detail?: string) => void

function checker (label: string, results: Results): Check {
  return (name, ok, detail) => {
    if (ok) results.passed++
    else results.failed++
    process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${label}: ${name}${ok || detail === undefined ? '' : `\n  ${detail.split('\n').join('\n  ')}`}\n`)
  }
}

async function post (url: string, body: Buffer): Promise<number> {
  const res = await fetch(`${url}/apple/notifications`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  await res.text()
  return res.status
}

async function waitFor (target: Target, count: number, timeoutMs = 15_000): Promise<boolean> {
  try {
    await target.waitFor(count, timeoutMs)
    return true
  } catch {
    return false
  }
}

// Time from exec until /readyz answers 200: what a supervisor or Fly's health check waits for.
async function timeToReady (runner: Runner, env: Record<string, string>): Promise<{ server: ServerProcess; ms: number | null }> {
  const started = performance.now()
  const server = await spawnServer(env, ['serve'], runner)
  while (performance.now() - started < 30_000) {
    const res = await fetch(`${server.url}/readyz`).catch(() => null)
    if (res !== null) await res.text()
    if (res?.status === 200) return { server, ms: Math.round(performance.now() - started) }
    await sleep(5)
  }
  return { server, ms: null }
}

type Commands = Array<{ args: string[]; expect: RegExp }>

// Where the server and the CLI commands keep their data, as environment
// variables; by default each gets a new SQLite file in the scenario's folder.
export interface Databases {
  server: Record<string, string>
  cli: Record<string, string>
  // Checks of the engine's own parts, on the first server once it is ready.
  checkServer?: (server: ServerProcess, check: Check) => Promise<void>
}

export async function runScenarios (label: string, runner: Runner, commands: Commands, databases?: Databases): Promise<Results> {
  const results: Results = { passed: 0, failed: 0, measured: {} }
  const check = checker(label, results)
  const dir = mkdtempSync(join(tmpdir(), `storehook-${label}-`))
  const servers: ServerProcess[] = []
  const targets: Target[] = []
  try {
    const flaky = await startTarget((_req, n, res) => { res.writeHead(n === 1 ? 503 : 200).end() })
    targets.push(flaky)
    let steady = await startTarget()
    targets.push(steady)
    const steadyPort = Number(new URL(steady.url).port)
    const env = {
      ...(databases?.server ?? { DATABASE_PATH: join(dir, 'data', 'storehook.db') }),
      STOREHOOK_CONFIG: '',
      RETRY_MIN_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '200',
      POLL_INTERVAL_MS: '50',
      LOG_LEVEL: 'info',
      FORWARD_TARGETS: `${steady.url},${flaky.url}`
    }

    for (const c of commands) {
      // Their own database, so the server below starts on a new one.
      const r = await runCli(c.args, { ...env, ...(databases?.cli ?? { DATABASE_PATH: join(dir, 'cli', 'storehook.db') }) }, { cwd: dir, ...runner })
      check(`\`storehook ${c.args.join(' ')}\` runs`, r.code === 0 && c.expect.test(r.stdout), `exit ${r.code}\n${r.stdout}${r.stderr}`)
    }

    const first = await timeToReady({ cwd: dir, ...runner }, env)
    servers.push(first.server)
    if (first.ms !== null) results.measured.readyMs = first.ms
    check('starts on a new database and answers /readyz 200', first.ms !== null)
    await databases?.checkServer?.(first.server, check)

    const body = v2Body()
    check('ingest answers 200', await post(first.server.url, body) === 200)
    check('forwarded byte for byte', await waitFor(steady, 1) && steady.received[0]!.body.equals(body))
    check('retried after the target failed once', await waitFor(flaky, 2) && flaky.received[1]!.body.equals(body) && flaky.received[1]!.headers['x-storehook-attempt'] === '2',
      `flaky target got ${flaky.received.length} request(s)`)

    // The steady target goes down; a notification arrives; the server is killed
    // before it can deliver; the target comes back; a new process delivers it.
    await steady.close()
    targets.splice(targets.indexOf(steady), 1)
    const during = v2Body()
    check('ingest answers 200 while a target is down', await post(first.server.url, during) === 200)
    await first.server.kill('SIGKILL')
    check('SIGKILL ends the process', first.server.child.signalCode === 'SIGKILL')
    steady = await startTarget(undefined, '/hook', steadyPort)
    targets.push(steady)
    const second = await spawnServer(env, ['serve'], { cwd: dir, ...runner })
    servers.push(second)
    check('after kill -9 and restart, the stored notification is delivered', await waitFor(steady, 1) && steady.received[0]!.body.equals(during),
      `target got ${steady.received.length} request(s)`)
    check('nothing was lost: the first notification is not sent again to the target that had it', (await sleep(500), steady.received.every((r) => !r.body.equals(body))))
    check('the restarted server still ingests', await post(second.url, v2Body()) === 200 && await waitFor(steady, 2))
    await second.kill('SIGTERM')
    check('SIGTERM shuts down cleanly (exit 0)', second.child.exitCode === 0, `exit ${second.child.exitCode} ${second.child.signalCode}\n${second.lines.slice(-4).join('\n')}`)

    const status = await runCli(['status'], env, { cwd: dir, ...runner })
    check('`status` reads the same database afterwards', status.code === 0 && /0 pending, 0 dead, 3 delivered/.test(status.stdout), status.stdout + status.stderr)
  } catch (err) {
    check('scenario ran to the end', false, (err as Error).stack ?? String(err))
  } finally {
    for (const s of servers) await s.kill('SIGKILL')
    for (const t of targets) await t.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return results
}

// The same scenarios on PostgreSQL (issue 16): DATABASE_URL on a throwaway
// cluster, one new database for the server and one for the CLI commands.
// Skipped with one line where no cluster can start; where PostgreSQL is
// required (STOREHOOK_REQUIRE_POSTGRES=1), a cluster that fails to start
// counts as a failure.
// Its commands: the ones whose work differs by engine (the migrator, the reads of `status`).
export async function runScenariosOnPostgres (label: string, runner: Runner): Promise<Results> {
  const commands: Commands = [
    { args: ['migrate'], expect: /\d+ migration\(s\) applied, schema up to date/ },
    { args: ['status'], expect: /Last notification received/ }
  ]
  const skip = postgresUnavailable()
  if (skip !== null) {
    process.stdout.write(`ok - ${label}: # SKIP ${skip}\n`)
    return { passed: 0, failed: 0, measured: {} }
  }
  let cluster: Awaited<ReturnType<typeof startPostgres>>
  try {
    cluster = await startPostgres()
  } catch (err) {
    const results: Results = { passed: 0, failed: 0, measured: {} }
    checker(label, results)('a PostgreSQL cluster starts', false, String(err))
    return results
  }
  try {
    const server = await freshDatabase(cluster)
    const cli = await freshDatabase(cluster)
    // A short delivery timeout keeps the lease short (twice it, plus 5 s): on
    // PostgreSQL a restarted instance takes back only expired leases, and the
    // process killed mid-load may have held one.
    return await runScenarios(label, runner, commands, {
      server: { DATABASE_URL: server, DELIVERY_TIMEOUT_MS: '1000' },
      cli: { DATABASE_URL: cli },
      checkServer: (s, check) => checkWakeListener(server, s, check)
    })
  } finally {
    await cluster.stop()
  }
}

// The runtime's hold on the wake-up connection (src/outbox/pg/coordination.ts):
// it is LISTENing, and when the server side cuts it, it comes back by itself.
async function checkWakeListener (url: string, server: ServerProcess, check: Check): Promise<void> {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    const listeners = async (): Promise<number[]> => (await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()")).rows.map((r) => r.pid)
    const [pid] = await listeners()
    check('keeps a connection LISTENing for other instances\' wake-ups', pid !== undefined)
    if (pid === undefined) return
    await admin.query('SELECT pg_terminate_backend($1)', [pid])
    const back = await until(async () => server.lines.some((l) => l.includes('wake-ups again')) && (await listeners()).some((p) => p !== pid), 15_000)
      .then(() => true, () => false)
    check('listens again by itself after the database cuts that connection', back, server.lines.slice(-4).join('\n'))
  } finally {
    await admin.end()
  }
}
