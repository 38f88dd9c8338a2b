import Database from 'better-sqlite3'
import { sql } from 'drizzle-orm'
import t from 'tap'
import type { Outbox } from '../../src/outbox/outbox.ts'
import { sqliteOnly, startApp, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

t.test('a full database answers 503, keeps running, and recovers by itself when space returns', sqliteOnly('a full disk is played by capping the file\'s page count'), async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  t.equal((await s.post(v2Body())).status, 200)
  await target.waitFor(1)

  // SQLite's page limit behaves as a full disk does: SQLITE_FULL on the next write that needs a page.
  const pages = s.db.get<{ page_count: number }>(sql`PRAGMA page_count`)!.page_count
  await (s.app.outbox as Outbox).setMaxPageCount(pages)
  const refused = await Promise.all(Array.from({ length: 20 }, () => s.post(v2Body({ padTo: 8000 }))))
  t.ok(refused.every((r) => r.status === 503), 'every write that found no room answered 503')
  t.same(refused[0]!.json, { error: 'The notification could not be stored; retry later.', code: 'STORAGE_UNAVAILABLE' }, 'without internals')
  t.ok(s.logs.some((l) => l.includes('Storing a notification failed') && l.includes('SQLITE_FULL')), 'the cause is logged')
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'the process is alive')

  await (s.app.outbox as Outbox).setMaxPageCount(null)
  const body = v2Body()
  const back = await s.post(body)
  t.equal(back.status, 200, 'accepted again once space returned, without a restart')
  await until(() => target.received.some((r) => r.body.equals(body)))
  t.equal(target.received.length, 2, 'only accepted notifications were forwarded')
})

t.test('a database locked by another writer answers 503 and recovers when the lock is gone', sqliteOnly('one writer locking the whole file is SQLite\'s (PostgreSQL\'s outages: test/pg/)'), async (t) => {
  const s = await startApp(t, { DATABASE_BUSY_TIMEOUT_MS: '100' })
  const other = new Database(s.config.databasePath)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  const locked = await s.post(v2Body())
  t.equal(locked.status, 503, 'locked: 503 so Apple retries')
  const ready = await fetch(`${s.url}/readyz`)
  t.equal(ready.status, 503, '/readyz says the database is not writable')
  other.exec('ROLLBACK')
  t.equal((await s.post(v2Body())).status, 200, 'writes again once the lock is released')
  // The failed probe's verdict stands for up to a second (routes/health.ts).
  await until(async () => (await fetch(`${s.url}/readyz`)).status === 200, 5000, '/readyz ready again')
})

// /readyz is public and each probe is a durable commit on the one writer
// thread: a flood of them must cost at most about one write a second, and
// still tell a database that cannot take a write right now.
t.test('a burst of /readyz shares one probe write', async (t) => {
  const s = await startApp(t, { DATABASE_BUSY_TIMEOUT_MS: '100' })
  t.equal((await fetch(`${s.url}/readyz`)).status, 200)
  const before = (await s.app.outbox.stats()).ops
  const started = Date.now()
  const burst = await Promise.all(Array.from({ length: 200 }, async () => (await fetch(`${s.url}/readyz`)).status))
  const seconds = Math.ceil((Date.now() - started) / 1000)
  t.ok(burst.every((st) => st === 200), 'every one answered ready')
  const writes = (await s.app.outbox.stats()).ops - before
  t.ok(writes <= seconds + 1, `${writes} probe write(s) for 200 requests over ${seconds} s`)
})

t.test('a database that cannot write turns /readyz 503, and ready again after', sqliteOnly('the write is blocked by locking the whole file'), async (t) => {
  const s = await startApp(t, { DATABASE_BUSY_TIMEOUT_MS: '100' })
  const other = new Database(s.config.databasePath)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  await until(async () => (await fetch(`${s.url}/readyz`)).status === 503, 5000, '/readyz 503 while nothing can be written')
  t.ok(s.logs.some((l) => l.includes('Readiness probe could not write')), 'the cause is logged')
  other.exec('ROLLBACK')
  await until(async () => (await fetch(`${s.url}/readyz`)).status === 200, 5000, '/readyz ready again')
})
