// SIGTERM under load, deliveries in flight to a slow target: the process exits
// cleanly within SHUTDOWN_TIMEOUT_MS (plus the time to commit and close), and
// the next start delivers every acknowledged notification.
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/app.ts'
import { altered, missing, sleep, startLedgerTarget, startLoad } from '../helpers/ledger.ts'
import { spawnServer, type ServerProcess } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

t.test('SIGTERM under load: out within the deadline, nothing acknowledged lost', async (t) => {
  const dir = tempDir(t)
  const slow = await startTarget((_r, _n, res) => { setTimeout(() => res.writeHead(200).end(), 3000) })
  const port = Number(new URL(slow.url).port)
  const shutdownMs = 1000
  const env = { DATABASE_PATH: join(dir, 'term.db'), FORWARD_TARGETS: slow.url, SHUTDOWN_TIMEOUT_MS: String(shutdownMs), POLL_INTERVAL_MS: '50', RETRY_MIN_DELAY_MS: '20', RETRY_MAX_DELAY_MS: '200' }
  let server: ServerProcess | null = await spawnServer(env)
  const load = startLoad(() => server?.url ?? null, 8)
  t.teardown(load.stop)
  await slow.waitFor(1, 10_000)
  await sleep(500)
  const s = server
  const started = Date.now()
  const code = await s.kill('SIGTERM')
  const took = Date.now() - started
  server = null
  await load.stop()
  t.equal(code, 0, 'exited cleanly, not forced')
  // closeWithGrace would force exit 1 at SHUTDOWN_TIMEOUT_MS + 5 s; a clean exit within +2 s means the deadline held.
  t.ok(took < shutdownMs + 2000, `exited ${took} ms after SIGTERM (deadline ${shutdownMs} ms; deliveries take 3 s)`)
  t.ok(s.lines.some((l) => l.includes('Shutdown deadline reached')), 'the in-flight deliveries were aborted at the deadline')
  t.ok(load.acknowledged.size > 0, `${load.acknowledged.size} acknowledged before and during the shutdown (${JSON.stringify(Object.fromEntries(load.statuses))})`)
  await slow.close()

  // The same host and port: deliveries belong to the target's name, its host.
  const target = await startLedgerTarget({ port })
  t.teardown(target.close)
  const again = await spawnServer(env)
  t.teardown(() => again.kill('SIGTERM'))
  const deadline = Date.now() + 20_000
  while (missing(load.acknowledged, target).length > 0 && Date.now() < deadline) await sleep(50)
  t.same(missing(load.acknowledged, target), [], 'after the restart, every acknowledged notification was delivered')
  t.same(altered(load.acknowledged, target), [], 'and each reached it byte for byte (SHA-256)')
})
