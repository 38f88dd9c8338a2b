import { join } from 'node:path'
import { and, asc, eq, getTableColumns, lte, sql } from 'drizzle-orm'
import t from 'tap'
import { migrate, openDatabase, type Db } from '../../src/db/client.ts'
import { deliveries, indexedColumns, notifications } from '../../src/db/schema.ts'
import { dedupeKeyOf, type NotificationRow } from '../../src/outbox/engine.ts'
import * as store from '../../src/outbox/store.ts'
import { tempDir } from '../helpers/app.ts'

// What the rows say, read straight from the tables (the program has no use for these reads).
const deliveriesOf = (db: Db, notificationId: string) =>
  db.select().from(deliveries).where(eq(deliveries.notificationId, notificationId)).orderBy(asc(deliveries.target)).all()
const countDue = (db: Db, target: string, now: number): number =>
  db.select({ n: sql<number>`count(*)` }).from(deliveries)
    .where(and(eq(deliveries.target, target), eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, now))).get()!.n
const findNotification = (db: Db, id: string) => db.select().from(notifications).where(eq(notifications.id, id)).get()

function setup (t: Parameters<typeof tempDir>[0]) {
  const database = openDatabase(join(tempDir(t), 's.db'))
  migrate(database)
  t.teardown(() => database.close())
  return database
}

function notification (id: string, dedupeKey = id): store.NewNotification {
  return {
    id, dedupeKey, receivedAt: 1000, source: 'webhook', version: 2, notificationUuid: dedupeKey, notificationType: 'TEST',
    verification: 'unchecked', body: Buffer.from('{"signedPayload":"a.b.c"}')
  }
}

const attempt = (c: store.ClaimedDelivery, statusCode: number | null = 200): store.AttemptRecord => ({
  deliveryId: c.deliveryId, fence: c.fence, attempt: c.attempt, startedAt: 0, durationMs: 1, statusCode, error: null, responseExcerpt: null
})

t.test('a stale attempt can never overwrite a newer result', async (t) => {
  const { db } = setup(t)
  store.enqueue(db, notification('n1'), ['a'], 1000)
  const [first] = store.claimDue(db, 'a', 10, 1000, 2000)
  t.equal(first!.attempt, 1)
  t.same(store.claimDue(db, 'a', 10, 1500, 2500), [], 'leased: not claimable before the lease ends')
  // The lease expired (the holder hung): another claim takes it with a new fence.
  const [second] = store.claimDue(db, 'a', 10, 2000, 3000)
  t.equal(second!.attempt, 2)
  t.ok(second!.fence > first!.fence)
  t.equal(store.complete(db, attempt(second!), 2100), true, 'the current holder records success')
  t.equal(store.scheduleRetry(db, attempt(first!, 503), 9999, 2200), false, 'the stale holder cannot turn it back into a retry')
  t.equal(store.markDead(db, attempt(first!, 500), 2200), false)
  const [d] = deliveriesOf(db, 'n1')
  t.equal(d!.status, 'delivered')
  t.equal(d!.lastStatusCode, 200)
  t.equal(store.listAttempts(db, d!.id).length, 3, 'the stale attempts are still history')
})

// What lets the relay tests stop sleeping after a delivery settles: nothing
// the worker does later can pick a delivered or dead row up again.
t.test('a delivered or dead delivery is never claimed again, however long after', async (t) => {
  const { db } = setup(t)
  store.enqueue(db, notification('n1'), ['a'], 1000)
  store.enqueue(db, notification('n2'), ['a'], 1000)
  const [one, two] = store.claimDue(db, 'a', 10, 1000, 2000)
  t.equal(store.complete(db, attempt(one!), 1100), true)
  t.equal(store.markDead(db, attempt(two!, 500), 1100), true)
  t.same(store.claimDue(db, 'a', 10, 1_000_000_000, 1_000_002_000), [], 'long after every lease and schedule')
  t.equal(countDue(db, 'a', 1_000_000_000), 0)
})

t.test('a delivery leased at enqueue is what a claim would have left, and falls due when its lease ends', async (t) => {
  const { db } = setup(t)
  const stored = store.enqueue(db, notification('n1'), ['a', 'b'], 1000, [['a', 4000]])
  t.equal(stored.leased.length, 1, 'only the target that asked gets a lease')
  const [leased] = stored.leased
  t.equal(leased!.target, 'a')
  t.equal(leased!.retrySince, 1000, 'its give-up clock starts at arrival')
  const a = deliveriesOf(db, 'n1').find((d) => d.target === 'a')!
  t.equal(a.id, leased!.deliveryId)
  t.match(a, { status: 'pending', attempts: 1, fence: 1, leaseUntil: 4000, nextAttemptAt: 4000 })
  t.same(store.claimDue(db, 'a', 10, 3999, 9000), [], 'no claim takes it while the lease runs')
  t.equal(store.claimDue(db, 'b', 10, 1000, 9000).length, 1, 'the other target claims its row as usual')
  t.equal(store.complete(db, { deliveryId: a.id, fence: 1, attempt: 1, startedAt: 1000, durationMs: 1, statusCode: 200, error: null, responseExcerpt: null }, 1100), true,
    'the holder records with fence 1')

  // A holder that died: the row falls due at the lease's end, and the next claim fences it out.
  const other = store.enqueue(db, notification('n2'), ['a'], 2000, [['a', 5000]]).leased[0]!
  const [again] = store.claimDue(db, 'a', 10, 5000, 9000)
  t.equal(again!.deliveryId, other.deliveryId)
  t.match(again, { attempt: 2, fence: 2 })
  t.equal(store.markDead(db, { deliveryId: other.deliveryId, fence: 1, attempt: 1, startedAt: 2000, durationMs: 1, statusCode: 500, error: null, responseExcerpt: null }, 5001), false,
    'the dead holder cannot record')
})

t.test('reclaimLeases makes leased rows due at once and fences their old holders', async (t) => {
  const { db } = setup(t)
  store.enqueue(db, notification('n1'), ['a', 'b'], 1000)
  const [c] = store.claimDue(db, 'a', 10, 1000, 99_999)
  t.equal(store.reclaimLeases(db, 1100), 1)
  t.equal(store.complete(db, attempt(c!), 1200), false, 'the dead process cannot record')
  const [again] = store.claimDue(db, 'a', 10, 1100, 5000)
  t.equal(again!.deliveryId, c!.deliveryId)
  t.equal(store.nextDueAt(db, 'b'), 1000)
})

t.test('enqueue dedupes on the key and replay resets the give-up clock', async (t) => {
  const { db } = setup(t)
  t.same(store.enqueue(db, notification('n1', 'uuid-1'), ['a'], 1000), { id: 'n1', duplicate: false, targets: ['a'], leased: [] })
  t.same(store.enqueue(db, notification('n2', 'uuid-1'), ['a'], 1001, [['a', 5000]]), { id: 'n1', duplicate: true, targets: [], leased: [] }, 'a repeat is not leased to anyone')
  const [c] = store.claimDue(db, 'a', 1, 1000, 2000)
  store.markDead(db, attempt(c!, 500), 1500)
  t.same(store.replay(db, 'n1', ['a', 'b'], 5000), ['a', 'b'])
  const ds = deliveriesOf(db, 'n1')
  t.same(ds.map((d) => [d.target, d.status, d.retrySince, d.nextAttemptAt]), [['a', 'pending', 5000, 5000], ['b', 'pending', 5000, 5000]])
  t.same(store.replay(db, 'missing', ['a'], 5000), [])
  t.equal(findNotification(db, 'n1')!.notificationUuid, 'uuid-1')
})

t.test('release gives a claimed delivery back, due at once', async (t) => {
  const { db } = setup(t)
  store.enqueue(db, notification('n1'), ['a'], 1000)
  const [c] = store.claimDue(db, 'a', 1, 1000, 50_000)
  t.equal(store.release(db, c!.deliveryId, c!.fence, 1200), true)
  t.equal(store.release(db, c!.deliveryId, c!.fence, 1200), false, 'only once')
  t.equal(countDue(db, 'a', 1200), 1)
  const [again] = store.claimDue(db, 'a', 1, 1200, 50_000)
  t.equal(again!.attempt, 1, 'a released claim was never sent: the next claim is still attempt 1')
  t.ok(again!.fence > c!.fence, 'and the released claim\'s fence is stale')
})

t.test('the insert writes every column of the row, each from its own field', async (t) => {
  const { db } = setup(t)
  // A distinct value for every column the table has (one added later too),
  // but the two that say how the body is stored: the engine decides those.
  const { bodyEncoding: _e, bodyChainId: _c, ...columns } = getTableColumns(notifications)
  const row = Object.fromEntries(Object.entries(columns).map(([key, c], i) => [key,
    c.dataType === 'number' ? 1000 + i : c.dataType === 'buffer' ? Buffer.from(`{"k":${i}}`) : c.enumValues?.[0] ?? `${key}-${i}`])) as NotificationRow
  store.enqueue(db, row, [], 1000)
  const stored = (id: string) => db.select().from(notifications).where(eq(notifications.id, id)).get()
  t.same(stored(row.id), { ...row, bodyEncoding: 'raw', bodyChainId: null }, 'a body too small to compress is kept as it came')
  const sparse = notification('n-sparse')
  store.enqueue(db, sparse, [], 1000)
  t.equal(stored('n-sparse')!.productId, null, 'a field the row leaves out is stored null')
})

t.test('every decoded field an operator looks up by has an index', async (t) => {
  const { db } = setup(t)
  // notification_uuid is looked up through dedupe_key, which holds it.
  const columns = [...Object.keys(indexedColumns).map((key) => getTableColumns(notifications)[key as keyof typeof indexedColumns].name).filter((name) => name !== 'notification_uuid'), 'verification']
  for (const column of columns) {
    const plan = db.all<{ detail: string }>(sql.raw(`EXPLAIN QUERY PLAN SELECT id FROM notifications WHERE ${column} = 'x'`))
    t.match(plan.map((p) => p.detail).join('; '), /USING (COVERING )?INDEX notifications_/, `${column} is searched through an index`)
  }
})

// The quarantine caps count what a sender controls in a row (body and the text
// beside it), oldest dropped first, from running totals that stay true across
// a restart, a release and a prune.
t.test('quarantine caps count the reason and fields too, and the totals stay true', async (t) => {
  const path = join(tempDir(t), 'q.db')
  let database = openDatabase(path)
  migrate(database)
  const row = (reason: string): store.NewQuarantined => ({
    receivedAt: Date.now(), code: 'SIGNATURE_INVALID', reason, bundleId: 'com.example', bytes: 2, body: Buffer.from('{}')
  })
  const actual = (): { items: number; bytes: number } => database.db.get<{ items: number; bytes: number }>(sql`
    SELECT count(*) AS items, coalesce(sum(length(body) + length(CAST(code AS BLOB)) + length(CAST(reason AS BLOB))
      + coalesce(length(CAST(bundle_id AS BLOB)), 0)), 0) AS bytes FROM quarantine`)!
  const caps = { maxItems: 5, maxBytes: 10_000 }
  // Two-byte bodies with 3,000-byte reasons: only the reasons can break the byte cap.
  const ids: number[] = []
  for (let i = 0; i < 4; i++) ids.push(store.quarantineRefused(database.db, row('r'.repeat(3000)), caps).id)
  const kept = database.db.all<{ id: number }>(sql`SELECT id FROM quarantine ORDER BY id`).map((r) => r.id)
  t.same(kept, ids.slice(1), 'the byte cap counted the reasons: the oldest went first')
  t.same(store.quarantineSize(database.db), actual(), 'the totals are the rows')
  t.ok(store.quarantineSize(database.db).bytes <= caps.maxBytes)

  for (let i = 0; i < 8; i++) store.quarantineRefused(database.db, row('short'), caps)
  t.equal(store.quarantineSize(database.db).items, 5, 'the item cap holds')
  t.same(store.quarantineSize(database.db), actual())

  const [first] = store.listQuarantine(database.db, 1, null)
  store.markReleased(database.db, first!.id, 'n1', Date.now())
  store.pruneDelivered(database.db, Date.now() + 1, 100)
  t.same(store.quarantineSize(database.db), actual(), 'after a release and a prune')

  database.close()
  database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())
  t.same(store.quarantineSize(database.db), actual(), 'after a restart')
  store.quarantineRefused(database.db, row('after restart'), caps)
  t.equal(store.quarantineSize(database.db).items, 5)
  t.same(store.quarantineSize(database.db), actual())
})

t.test('the dedupe key: a V2 notification\'s UUID, a V1 body\'s digest', async (t) => {
  t.equal(dedupeKeyOf('uuid-1', Buffer.from('a')), 'uuid-1', 'Apple\'s retries of one V2 notification share its UUID, whatever their bytes')
  t.equal(dedupeKeyOf(null, Buffer.from('a')), dedupeKeyOf(null, Buffer.from('a')), 'the same V1 bytes are one notification')
  t.not(dedupeKeyOf(null, Buffer.from('a')), dedupeKeyOf(null, Buffer.from('b')))
  t.match(dedupeKeyOf(null, Buffer.from('a')), /^v1:[0-9a-f]{64}$/, 'and cannot collide with a UUID')
})
