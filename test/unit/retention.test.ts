import { statSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { migrate, openDatabase } from '../../src/db/client.ts'
import * as store from '../../src/outbox/store.ts'
import { tempDir } from '../helpers/app.ts'
import { runCli } from '../helpers/process.ts'

const DAY = 86_400_000

function add (db: Parameters<typeof store.enqueue>[0], id: string, receivedAt: number, outcome: 'delivered' | 'pending' | 'dead' | 'none'): void {
  store.enqueue(db, {
    id, dedupeKey: id, receivedAt, source: 'webhook', version: 2, notificationType: 'TEST', verification: 'unchecked', body: Buffer.alloc(6000, 120)
  }, outcome === 'none' ? [] : [id], receivedAt)
  if (outcome === 'delivered' || outcome === 'dead') {
    const [c] = store.claimDue(db, id, 1, receivedAt, receivedAt + 1000)
    const a = { deliveryId: c!.deliveryId, fence: c!.fence, attempt: 1, startedAt: receivedAt, durationMs: 1, statusCode: outcome === 'dead' ? 500 : 200, error: null, responseExcerpt: null }
    if (outcome === 'delivered') store.complete(db, a, receivedAt + 1)
    else store.markDead(db, a, receivedAt + 1)
  }
}

t.test('storehook prune deletes old delivered notifications only, with their deliveries and attempts', async (t) => {
  const path = join(tempDir(t), 'r.db')
  const database = openDatabase(path)
  migrate(database)
  const old = Date.now() - 40 * DAY
  const { db } = database
  database.transaction(() => {
    add(db, '00000000-0000-7000-8000-000000000001', old, 'delivered')
    add(db, '00000000-0000-7000-8000-000000000002', old, 'pending')
    add(db, '00000000-0000-7000-8000-000000000003', old, 'dead')
    add(db, '00000000-0000-7000-8000-000000000004', old, 'none')
    add(db, '00000000-0000-7000-8000-000000000005', Date.now() - DAY, 'delivered')
  })
  database.close()

  const r = await runCli(['prune'], { DATABASE_PATH: path })
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, 'Pruned 2 delivered notification(s) older than 30 day(s).\n')
  const after = openDatabase(path)
  t.teardown(() => after.close())
  const ids = after.db.all<{ id: string }>(sql`SELECT id FROM notifications ORDER BY id`).map((x) => x.id.slice(-1))
  t.same(ids, ['2', '3', '5'], 'the old delivered one and the old one without targets are gone; pending, dead and recent stay')
  t.equal(after.db.get<{ n: number }>(sql`SELECT count(*) AS n FROM attempts a LEFT JOIN deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL`)!.n, 0, 'no orphaned attempts')
  t.equal((await runCli(['prune'], { DATABASE_PATH: path, RETENTION_DAYS: '0' })).stdout, 'RETENTION_DAYS=0: nothing is ever pruned.\n')
})

t.test('at a steady rate with pruning, the file stops growing', async (t) => {
  const path = join(tempDir(t), 's.db')
  const database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())
  const { db } = database
  const sizes: number[] = []
  let n = 0
  for (let day = 0; day < 8; day++) {
    // A "day" of 400 delivered notifications, then prune everything older than two "days".
    const now = day * DAY
    database.transaction(() => {
      for (let i = 0; i < 400; i++) add(db, `00000000-0000-7000-8000-${String(++n).padStart(12, '0')}`, now + i, 'delivered')
    })
    while (database.transaction(() => store.pruneDelivered(db, now - 2 * DAY, 500)) === 500) { /* next batch */ }
    database.db.run(sql`PRAGMA wal_checkpoint(TRUNCATE)`)
    sizes.push(statSync(path).size)
  }
  t.ok(sizes[7]! <= sizes[3]! * 1.05, `the size after 8 "days" (${sizes[7]}) is that after 4 (${sizes[3]}): freed pages are reused`)
  t.ok(sizes[3]! > sizes[0]!, 'while it did grow at first')
})
