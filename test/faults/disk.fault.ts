// The disk fills under load (SQLite's page limit, which fails writes with
// SQLITE_FULL exactly as a full disk does): 503 to Apple, no crash, recovery
// by itself once space returns, nothing acknowledged lost.
import { sql } from 'drizzle-orm'
import t from 'tap'
import type { Outbox } from '../../src/outbox/outbox.ts'
import { startApp } from '../helpers/app.ts'
import { altered, missing, sleep, startLedgerTarget, startLoad } from '../helpers/ledger.ts'

t.test('disk full under load: 503s, no crash, recovers, nothing acknowledged lost', async (t) => {
  const target = await startLedgerTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const load = startLoad(() => s.url, 8)
  t.teardown(load.stop)
  await sleep(500)
  const before = load.acknowledged.size
  const pages = s.db.get<{ page_count: number }>(sql`PRAGMA page_count`)!.page_count
  await (s.app.outbox as Outbox).setMaxPageCount(pages)
  await sleep(1000)
  const fullStatuses = new Map(load.statuses)
  const during503 = fullStatuses.get(503) ?? 0
  t.ok(during503 > 0, `writes that found no room answered 503 (${during503} so far)`)
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'alive while full')

  await (s.app.outbox as Outbox).setMaxPageCount(null)
  const afterLift = load.acknowledged.size
  await sleep(700)
  await load.stop()
  t.ok(load.acknowledged.size > afterLift, `accepting again without a restart (${load.acknowledged.size - afterLift} more)`)
  const others = [...load.statuses.keys()].filter((k) => k !== 200 && k !== 503)
  t.same(others, [], `only 200 and 503, never another 5xx or a dropped connection (${JSON.stringify(Object.fromEntries(load.statuses))})`)
  const deadline = Date.now() + 20_000
  while (missing(load.acknowledged, target).length > 0 && Date.now() < deadline) await sleep(50)
  t.same(missing(load.acknowledged, target), [], `every one of the ${load.acknowledged.size} acknowledged reached the target (${before} before the disk filled)`)
  t.same(altered(load.acknowledged, target), [], 'and each reached it byte for byte (SHA-256)')
  t.ok(s.logs.some((l) => l.includes('SQLITE_FULL')), 'the cause is logged')
})
