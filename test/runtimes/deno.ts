// npm run test:deno: the same source under Deno (the npm package `deno`, so
// CI needs nothing else), driven over HTTP through the scenarios the single
// binary passes: ingest, forward, retry, kill -9 and restart, and the CLI.
import { fileURLToPath } from 'node:url'
import { runScenarios, runScenariosOnPostgres } from './scenario.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const deno = [`${root}node_modules/.bin/deno`, 'run', '-A', '--node-modules-dir=manual', `${root}src/main.ts`]

// Deno resolves node_modules from its working folder, so it runs in the checkout.
const runner = { command: deno, cwd: root, startTimeoutMs: 60_000 }
const results = await runScenarios('deno', runner, [
  { args: ['--version'], expect: /^\d+\.\d+\.\d+\n$/ },
  { args: ['migrate'], expect: /\d+ migration\(s\) applied, schema up to date/ },
  { args: ['status'], expect: /Last notification received/ },
  { args: ['replay', '--type', 'DID_RENEW'], expect: /Replayed 0 notification\(s\)/ }
])
// DATABASE_URL: node-postgres from node_modules, its LISTEN connection and advisory locks, under Deno.
const onPostgres = await runScenariosOnPostgres('deno-postgres', runner)
process.stdout.write(`deno: start-up to /readyz 200: ${results.measured.readyMs ?? '-'} ms (SQLite), ${onPostgres.measured.readyMs ?? '-'} ms (PostgreSQL)\n`)
const passed = results.passed + onPostgres.passed
const failed = results.failed + onPostgres.failed
process.stdout.write(`deno: ${passed} passed, ${failed} failed\n`)
process.exitCode = failed === 0 ? 0 : 1
