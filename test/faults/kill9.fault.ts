// kill -9 at random moments under load, several times, with one target
// flapping (200 / 500 / connection refused): after the last restart and the
// drain, every notification answered 200 reached every target.
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/app.ts'
import { altered, duplicates, missing, QUICK, sleep, startLedgerTarget, startLoad } from '../helpers/ledger.ts'
import { spawnServer, type ServerProcess } from '../helpers/process.ts'

const KILLS = Number(process.env.FAULTS_KILLS ?? (QUICK ? 3 : 10))

t.test(`SIGKILL ${KILLS} times under load with a flapping target loses nothing acknowledged`, async (t) => {
  const dir = tempDir(t)
  const steady = await startLedgerTarget()
  const flapping = await startLedgerTarget({ flapMs: 150 })
  t.teardown(steady.close)
  t.teardown(flapping.close)
  const env = {
    DATABASE_PATH: join(dir, 'kill.db'),
    FORWARD_TARGETS: `${steady.url},${flapping.url}`,
    RETRY_MIN_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '300',
    POLL_INTERVAL_MS: '50',
    DELIVERY_TIMEOUT_MS: '1000',
    // spawnServer waits for the "listening" line, logged at info.
    LOG_LEVEL: 'info'
  }
  let server: ServerProcess | null = null
  const load = startLoad(() => server?.url ?? null, 8)
  t.teardown(load.stop)
  const killedAt: number[] = []
  for (let i = 0; i < KILLS; i++) {
    server = await spawnServer(env)
    // A random moment: mid-commit, mid-delivery, mid-claim, wherever it falls.
    const wait = 150 + Math.floor(Math.random() * 600)
    await sleep(wait)
    const s: ServerProcess = server
    server = null
    t.equal(await s.kill('SIGKILL'), null, `kill ${i + 1} after ${wait} ms: killed, not exited`)
    killedAt.push(load.acknowledged.size)
  }
  await load.stop()
  t.ok(load.acknowledged.size >= KILLS, `${load.acknowledged.size} notifications acknowledged across ${KILLS} kills (${JSON.stringify(Object.fromEntries(load.statuses))})`)

  await flapping.steady()
  const last = await spawnServer(env)
  t.teardown(() => last.kill('SIGTERM'))
  const deadline = Date.now() + 60_000
  while ((missing(load.acknowledged, steady).length > 0 || missing(load.acknowledged, flapping).length > 0) && Date.now() < deadline) await sleep(100)
  t.same(missing(load.acknowledged, steady), [], 'the steady target got every acknowledged notification')
  t.same(altered(load.acknowledged, steady), [], 'and each reached it byte for byte (SHA-256)')
  t.same(missing(load.acknowledged, flapping), [], 'the flapping target got every acknowledged notification')
  t.same(altered(load.acknowledged, flapping), [], 'and each reached it byte for byte (SHA-256)')
  const dupSteady = duplicates(steady)
  const dupFlapping = duplicates(flapping)
  t.comment(`ledger: ${load.acknowledged.size} acknowledged; steady target ${steady.delivered.size} distinct, ${dupSteady} duplicates; flapping target ${flapping.delivered.size} distinct, ${dupFlapping} duplicates, ${flapping.requests} requests in all`)
  // At-least-once: a duplicate needs a kill between the target's 200 and the commit of "delivered", at most the in-flight deliveries per kill.
  const bound = KILLS * 2 * 4
  t.ok(dupSteady + dupFlapping <= bound, `duplicates are few: ${dupSteady + dupFlapping} <= ${bound} (concurrency 4 per target, ${KILLS} kills)`)
})
