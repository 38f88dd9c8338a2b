// npm run test:binary: the single executable itself (build it first with
// npm run build:binary), copied to a folder outside the checkout so that
// nothing there (node_modules, drizzle/, package.json) can help it.
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runScenarios, runScenariosOnPostgres } from './scenario.ts'

const built = fileURLToPath(new URL('../../dist/storehook', import.meta.url))
if (!existsSync(built)) {
  process.stdout.write('not ok - dist/storehook is missing: run npm run build:binary first\nbinary: 0 passed, 1 failed\n')
  process.exit(1)
}
const home = mkdtempSync(join(tmpdir(), 'storehook-binary-'))
const binary = join(home, 'storehook')
copyFileSync(built, binary)

const runner = { command: [binary], startTimeoutMs: 30_000 }
const results = await runScenarios('binary', runner, [
  { args: ['--version'], expect: /^\d+\.\d+\.\d+\n$/ },
  { args: ['--help'], expect: /Usage: storehook <command>/ },
  { args: ['migrate'], expect: /\d+ migration\(s\) applied, schema up to date/ },
  { args: ['status'], expect: /Last notification received/ },
  { args: ['replay', '--type', 'DID_RENEW'], expect: /Replayed 0 notification\(s\)/ },
  { args: ['prune'], expect: /Pruned 0 delivered notification/ },
  { args: ['quarantine', 'list'], expect: /The quarantine is empty/ }
])
// DATABASE_URL: the PostgreSQL migrations come from the binary's assets too.
const onPostgres = await runScenariosOnPostgres('binary-postgres', runner)
rmSync(home, { recursive: true, force: true })
process.stdout.write(`binary: ${(statSync(built).size / 1_048_576).toFixed(1)} MB; start-up to /readyz 200: ${results.measured.readyMs ?? '-'} ms (SQLite), ${onPostgres.measured.readyMs ?? '-'} ms (PostgreSQL)\n`)
const passed = results.passed + onPostgres.passed
const failed = results.failed + onPostgres.failed
process.stdout.write(`binary: ${passed} passed, ${failed} failed\n`)
process.exitCode = failed === 0 ? 0 : 1
