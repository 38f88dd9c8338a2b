// The storage contract (src/outbox/engine.ts), one suite run against both
// engines: the SQLite file (outbox.ts) and PostgreSQL (src/outbox/pg/), each
// opened as the server opens it (open-storage.ts), on real files and a real
// server. Then what only PostgreSQL has to get right: several instances on
// one database claiming and enqueueing at once, and the start-up checks.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../../src/db/client.ts'
import { openPg } from '../../src/db/pg-client.ts'
import * as schemaPg from '../../src/db/schema-pg.ts'
import * as schema from '../../src/db/schema.ts'
import { COMPACTION_START, dedupeKeyOf, type AlertEdge, type AttemptRecord, type ClaimedDelivery, type LeasedDelivery, type NewHistoryRun, type NewNotification, type NewQuarantined, type Storage } from '../../src/outbox/engine.ts'
import { openStorage } from '../../src/outbox/open-storage.ts'
import { inTransaction, type Q } from '../../src/outbox/pg/connection.ts'
import { openPgStorage } from '../../src/outbox/pg/engine.ts'
import { makeChain, signNotification } from '../helpers/apple-chain.ts'
import { tempDir } from '../helpers/app.ts'
import { generator } from '../helpers/generated-bodies.ts'
import { freshDatabase, postgresUnavailable, startPostgres, type Cluster } from '../helpers/postgres.ts'

// What a fixture needs of a test: somewhere to hang its cleanup.
type T = { teardown: (fn: () => void | Promise<void>) => void }

// A storage as a test opens it, with a side door to its rows for what no
// operation does: damage a body, plant one stored as received.
interface Fixture {
  s: Storage
  exec: (statement: string) => Promise<void>
  plantRaw: (id: string, body: Buffer) => Promise<void>
}

interface Engine {
  name: string
  skip: string | null
  open: (t: T) => Promise<Fixture>
}

let cluster: Cluster | null = null
const unavailable = postgresUnavailable()

const engines: Engine[] = [
  {
    name: 'SQLite',
    skip: null,
    async open (t) {
      const path = join(tempDir(t), 's.db')
      const { outbox } = await openStorage({ databasePath: path, databaseUrl: null }, { busyTimeoutMs: 2000 })
      const side = openDatabase(path)
      t.teardown(async () => { await outbox.close(); side.close() })
      return {
        s: outbox,
        exec: async (statement) => { side.db.run(sql.raw(statement)) },
        plantRaw: async (id, body) => { side.db.update(schema.notifications).set({ body, bodyEncoding: 'raw', bodyChainId: null }).where(eq(schema.notifications.id, id)).run() }
      }
    }
  },
  {
    name: 'PostgreSQL',
    skip: unavailable,
    async open (t) {
      cluster ??= await startPostgres()
      const url = await freshDatabase(cluster)
      const { outbox } = await openStorage({ databasePath: 'unused', databaseUrl: url }, { busyTimeoutMs: 2000 })
      const side = openPg(url, { max: 1 })
      t.teardown(async () => { await outbox.close(); await side.close() })
      return {
        s: outbox,
        exec: async (statement) => { await side.pool.query(statement) },
        plantRaw: async (id, body) => { await side.db.update(schemaPg.notifications).set({ body, bodyEncoding: 'raw', bodyChainId: null }).where(eq(schemaPg.notifications.id, id)) }
      }
    }
  }
]
t.teardown(async () => { await cluster?.stop() })

let seq = 0
// Ids as the ingest makes them sort: by arrival.
const nextId = (): string => `0190${String(++seq).padStart(8, '0')}-0000-7000-8000-000000000000`
function notification (over: Partial<NewNotification> = {}): NewNotification {
  const id = over.id ?? nextId()
  const body = over.body ?? Buffer.from(`{"signedPayload":"a.${id}.c"}`)
  return {
    id, dedupeKey: dedupeKeyOf(over.notificationUuid ?? id, body), receivedAt: Date.now(), source: 'webhook', version: 2,
    notificationUuid: id, notificationType: 'DID_RENEW', environment: 'Production', bundleId: 'com.example', verification: 'unverified', body, ...over
  }
}
const attempt = (c: LeasedDelivery, statusCode: number | null = 200, error: string | null = null): AttemptRecord => ({
  deliveryId: c.deliveryId, fence: c.fence, attempt: c.attempt, startedAt: Date.now(), durationMs: 3, statusCode, error, responseExcerpt: null
})
const quarantined = (over: Partial<NewQuarantined> = {}): NewQuarantined => ({
  receivedAt: Date.now(), code: 'SIGNATURE_INVALID', reason: 'bad signature', body: Buffer.from('x'.repeat(100)), bytes: 0, ...over
})
const deliveriesOf = async (s: Storage, id: string) => (await s.getNotification(id))!.deliveries

const FIXTURES = join(import.meta.dirname, '../fixtures')
const REAL = readFileSync(join(FIXTURES, 'apple/real/production-TEST-2024-10-17.json'))

for (const engine of engines) {
  t.test(engine.name, { skip: engine.skip ?? false }, async (t) => {
    t.test('enqueue stores one notification per dedupe key, and one delivery per target', async (t) => {
      const { s } = await engine.open(t)
      const n = notification()
      const first = await s.enqueue(n, ['a', 'b'], [])
      t.same(first, { id: n.id, duplicate: false, targets: ['a', 'b'], leased: [] })
      const again = await s.enqueue({ ...n, id: nextId() }, ['a', 'b', 'c'], [])
      t.same(again, { id: n.id, duplicate: true, targets: [], leased: [] }, 'a retry of the same notification is the same row')
      t.same((await deliveriesOf(s, n.id)).map((d) => [d.target, d.status, d.attempts]), [['a', 'pending', 0], ['b', 'pending', 0]])
      t.same(await s.matchingIds({}, 10), [n.id], 'one notification')
    })

    t.test('a delivery written leased is the caller\'s: no claim returns it until the lease ends', async (t) => {
      const { s } = await engine.open(t)
      const woken: Array<readonly string[]> = []
      s.onEnqueued((targets) => { woken.push(targets) })
      const n = notification()
      const r = await s.enqueue(n, ['a', 'b'], [['a', Date.now() + 60_000]])
      t.equal(r.leased.length, 1)
      t.match(r.leased[0], { notificationId: n.id, target: 'a', attempt: 1, fence: 1 })
      t.same(woken, [['b']], 'only the target with a row to claim is woken')
      t.same(await s.claim('a', 10, 60_000), [], 'leased')
      t.equal((await s.claim('b', 10, 60_000)).length, 1)
      t.equal(await s.complete({ ...attempt(r.leased[0]!) }), true, 'the holder of the lease records its outcome')
    })

    t.test('a claim carries the facts of its notification that a decoded document states', async (t) => {
      const { s } = await engine.open(t)
      const n = notification({ source: 'backfill', receivedAt: 1_700_000_000_123, verification: 'unverified', verificationError: 'chain_untrusted' })
      await s.enqueue(n, ['a'], [])
      const [c] = await s.claim('a', 10, 60_000)
      t.same(c!.facts, { source: 'backfill', receivedAt: 1_700_000_000_123, verification: 'unverified', verificationError: 'chain_untrusted' })
      const plain = notification()
      await s.enqueue(plain, ['a'], [])
      t.same((await s.claim('a', 10, 60_000))[0]!.facts, { source: 'webhook', receivedAt: plain.receivedAt, verification: 'unverified', verificationError: null }, 'no error: null')
    })

    t.test('tryExclusive runs a job with no other instance running it, gives its value, and passes its failure on', async (t) => {
      const { s } = await engine.open(t)
      t.same(await s.tryExclusive('retention', async () => 42), { ran: true, value: 42 })
      await t.rejects(s.tryExclusive('retention', async () => { throw new Error('job failed') }), /job failed/)
      t.same(await s.tryExclusive('retention', async () => 'again'), { ran: true, value: 'again' }, 'a failed run leaves the job free')
    })

    t.test('a claim numbered after an enqueue sees its rows (sequence, onEnqueued)', async (t) => {
      const { s } = await engine.open(t)
      let seenFrom = -1
      s.onEnqueued((_targets, from) => { seenFrom = from })
      const before = s.sequence()
      // Asked for together: the claim is numbered after the enqueue, so it must see its row.
      const [, claimed] = await Promise.all([s.enqueue(notification(), ['a'], []), s.claim('a', 10, 60_000)])
      t.ok(seenFrom > before, 'the wake names an op number after the enqueue')
      t.ok(s.sequence() >= seenFrom, 'and the claim that followed had at least that number')
      t.equal(claimed.length, 1, 'the claim saw the row')
    })

    t.test('claims, outcomes and the fence: a stale attempt never overwrites a newer result', async (t) => {
      const { s } = await engine.open(t)
      const n = notification()
      await s.enqueue(n, ['a'], [])
      // A zero lease ends at once: as if the holder hung past its lease.
      const [first] = await s.claim('a', 10, 0)
      t.equal(first!.attempt, 1)
      t.same(first!.body, n.body, 'the body as received')
      const [second] = await s.claim('a', 10, 60_000)
      t.equal(second!.attempt, 2)
      t.ok(second!.fence > first!.fence, 'the new holder has a newer fence')
      t.same(await s.claim('a', 10, 60_000), [], 'leased: not claimable before the lease ends')
      t.equal(await s.complete(attempt(second!)), true, 'the current holder records success')
      t.equal(await s.scheduleRetry(attempt(first!, 503), Date.now()), false, 'the stale holder cannot turn it into a retry')
      t.equal(await s.markDead(attempt(first!, 500)), false, 'nor into a death')
      const [d] = await deliveriesOf(s, n.id)
      t.match(d, { status: 'delivered', lastStatusCode: 200, leaseUntil: null })
      t.equal(d!.history.length, 3, 'every attempt is history, the stale ones too')
    })

    t.test('retry, release, releaseAttempt, death and expiry', async (t) => {
      const { s } = await engine.open(t)
      const n = notification()
      await s.enqueue(n, ['a', 'b', 'c'], [])
      const [a] = await s.claim('a', 1, 60_000)
      t.equal(await s.scheduleRetry(attempt(a!, 503, 'busy'), Date.now() + 60_000), true)
      t.same(await s.claim('a', 1, 60_000), [], 'not due before its retry time')
      t.ok((await s.nextDueAt('a'))! > Date.now(), 'the next due time is the retry')
      const [b] = await s.claim('b', 1, 60_000)
      t.equal(await s.release(b!.deliveryId, b!.fence + 1), false, 'a wrong fence releases nothing')
      t.equal(await s.release(b!.deliveryId, b!.fence), true)
      const [b2] = await s.claim('b', 1, 60_000)
      t.equal(b2!.attempt, 1, 'a released claim does not count as an attempt')
      t.equal(await s.releaseAttempt(attempt(b2!, null, 'shutting down')), true)
      const [b3] = await s.claim('b', 1, 60_000)
      t.equal(b3!.attempt, 2, 'a cut-short attempt counts, and the delivery is due again at once')
      t.equal(await s.markDead(attempt(b3!, 500, 'broken')), true)
      t.equal(await s.expire('c', Date.now() + 1000), 1, 'an unattempted delivery past the give-up time')
      const byTarget = Object.fromEntries((await deliveriesOf(s, n.id)).map((d) => [d.target, d]))
      t.match(byTarget.a, { status: 'pending', lastStatusCode: 503, lastError: 'busy' })
      t.match(byTarget.b, { status: 'dead', lastStatusCode: 500, lastError: 'broken' })
      t.match(byTarget.c, { status: 'dead', lastError: /gave up/ })
      t.same(await s.attentionCounts(), { dead: 2, quarantined: 0 })
    })

    t.test('an expired lease is reclaimed, and its holder\'s late result changes nothing', async (t) => {
      const { s } = await engine.open(t)
      const n = notification()
      await s.enqueue(n, ['a'], [])
      const [held] = await s.claim('a', 1, 0)
      t.ok(await s.reclaimLeases() >= 1, 'the lease that ended is taken back')
      t.equal(await s.complete(attempt(held!)), false, 'the old holder\'s fence is stale')
      const [again] = await s.claim('a', 1, 60_000)
      t.equal(again!.deliveryId, held!.deliveryId, 'due again')
    })

    t.test('replay: existing deliveries pending again, new targets added, unknown ids nothing', async (t) => {
      const { s } = await engine.open(t)
      const n = notification()
      await s.enqueue(n, ['a'], [])
      const [a] = await s.claim('a', 1, 60_000)
      await s.complete(attempt(a!))
      const woken: string[] = []
      s.onEnqueued((targets) => { woken.push(...targets) })
      t.same(await s.replay(n.id), ['a'])
      const [again] = await s.claim('a', 1, 60_000)
      t.equal(again!.attempt, 2)
      t.same(await s.replay(n.id, ['b']), ['b'])
      t.equal((await s.claim('b', 1, 60_000)).length, 1)
      t.same(await s.replay('no-such-id'), [])
      t.same(woken, ['a', 'b'])
    })

    t.test('quarantine: caps keep the newest, running totals, release lookup', async (t) => {
      const { s } = await engine.open(t)
      const caps = { maxItems: 2, maxBytes: 1_000_000 }
      const ids: number[] = []
      for (let i = 0; i < 3; i++) {
        const r = await s.quarantine(quarantined({ reason: `r${i}` }), caps)
        ids.push(r.id)
        t.equal(r.dropped, i < 2 ? 0 : 1)
      }
      const size = await s.quarantineSize()
      t.equal(size.items, 2)
      t.ok(size.bytes >= 200)
      t.same((await s.listQuarantine(10, null)).map((q) => q.id), [ids[2], ids[1]], 'newest first; the oldest dropped')
      t.same((await s.listQuarantine(10, ids[2]!)).map((q) => q.id), [ids[1]], 'paged by id')
      const byBytes = await s.quarantine(quarantined({ body: Buffer.alloc(5000, 1) }), { maxItems: 100, maxBytes: 5100 })
      t.equal(byBytes.dropped, 2, 'the bytes cap drops the older rows too')
      const found = await s.findQuarantined(byBytes.id)
      t.same(found!.body, Buffer.alloc(5000, 1), 'the refused body as received')
      const n = notification()
      await s.enqueue(n, ['a'], [])
      t.equal(await s.markReleased(byBytes.id, n.id), true)
      t.match(await s.findQuarantined(byBytes.id), { releasedAs: n.id })
      t.equal(await s.findQuarantined(999_999), null)
      t.same(await s.attentionCounts(), { dead: 0, quarantined: 0 }, 'a released row needs no attention')
    })

    t.test('bodies come back byte for byte, stored compressed against a chain kept once', async (t) => {
      const { s } = await engine.open(t)
      const chains = [makeChain(), makeChain()]
      const bodies: Buffer[] = [REAL, Buffer.from(JSON.stringify({ signedPayload: signNotification(chains[0]!) }))]
      for (let seed = 1; seed <= 40; seed++) {
        const g = generator(seed, chains)
        bodies.push(g.make(g.kind()))
      }
      for (const [i, body] of bodies.entries()) {
        const n = notification({ body, verification: i % 2 === 0 ? 'verified' : 'unverified' })
        await s.enqueue(n, ['a'], [])
        const [c] = await s.claim('a', 1, 60_000)
        t.ok(c!.body.equals(body), `claim, body ${i}`)
        t.ok((await s.getNotification(n.id))!.notification.body!.equals(body), `detail, body ${i}`)
        await s.complete(attempt(c!))
      }
      const q = await s.quarantine(quarantined({ body: REAL }), { maxItems: 10, maxBytes: 10_000_000 })
      t.ok((await s.findQuarantined(q.id))!.body!.equals(REAL), 'quarantine')
    })

    // Damaged bytes: cut the stored stream short (the SQL reads the same on both engines).
    t.test('a body that cannot be read back: views say why, a claim makes the delivery dead', async (t) => {
      const f = await engine.open(t)
      const n = notification({ body: REAL, verification: 'verified' })
      await f.s.enqueue(n, ['a'], [])
      await f.exec(`UPDATE notifications SET body = substr(body, 1, 40) WHERE id = '${n.id}'`)
      const detail = await f.s.getNotification(n.id)
      t.equal(detail!.notification.body, null, 'no other bytes in its place')
      t.type(detail!.notification.bodyError, 'string')
      t.same(await f.s.claim('a', 10, 60_000), [])
      t.match((await deliveriesOf(f.s, n.id))[0], { status: 'dead', lastError: /cannot be read/ })
    })

    t.test('compaction rewrites bodies stored as received, and they read the same', async (t) => {
      const f = await engine.open(t)
      const n = notification({ body: REAL, verification: 'verified' })
      await f.s.enqueue(n, ['a'], [])
      await f.plantRaw(n.id, REAL)
      const q = await f.s.quarantine(quarantined({ body: REAL }), { maxItems: 10, maxBytes: 10_000_000 })
      const first = await f.s.compactBodies(COMPACTION_START, 100)
      t.equal(first.rewritten, 1, 'the planted raw row')
      t.equal(first.cursor.notificationsAfter, 'done')
      const second = await f.s.compactBodies(COMPACTION_START, 100)
      t.equal(second.rewritten, 0, 'nothing left to rewrite')
      t.ok((await f.s.getNotification(n.id))!.notification.body!.equals(REAL))
      t.ok((await f.s.findQuarantined(q.id))!.body!.equals(REAL))
    })

    t.test('prune deletes old notifications whose every delivery is delivered, and nothing else', async (t) => {
      const { s } = await engine.open(t)
      const done = notification()
      const waiting = notification()
      await s.enqueue(done, ['a'], [])
      await s.enqueue(waiting, ['a', 'b'], [])
      for (const c of await s.claim('a', 10, 60_000)) await s.complete(attempt(c))
      t.equal(await s.prune(Date.now() - 60_000, 10), 0, 'nothing is old enough')
      t.equal(await s.prune(Date.now() + 1000, 10), 1)
      t.equal(await s.getNotification(done.id), null)
      t.not(await s.getNotification(waiting.id), null, 'a pending delivery keeps its notification')
    })

    t.test('the reads: list filters and cursor, detail, target health, gauges, overview', async (t) => {
      const { s } = await engine.open(t)
      const now = Date.now()
      const rows = [
        notification({ notificationType: 'TEST', environment: 'Sandbox', receivedAt: now - 1000 }),
        notification({ notificationType: 'DID_RENEW', originalTransactionId: 'otx', receivedAt: now - 500 }),
        notification({ notificationType: 'REFUND', bundleId: 'com.other', receivedAt: now })
      ]
      for (const n of rows) await s.enqueue(n, ['a', 'b'], [])
      const [c] = await s.claim('a', 1, 60_000)
      await s.markDead(attempt(c!, 500, 'no'))
      const page1 = await s.listNotifications({}, 2, null)
      t.same(page1.items.map((i) => i.id), [rows[2]!.id, rows[1]!.id], 'newest first')
      t.same(page1.items[0]!.deliveries.map((d) => d.target), ['a', 'b'])
      t.notOk('body' in page1.items[0]!, 'no body in a summary')
      const page2 = await s.listNotifications({}, 2, page1.nextCursor)
      t.same(page2.items.map((i) => i.id), [rows[0]!.id])
      t.equal(page2.nextCursor, null)
      t.same((await s.listNotifications({ type: 'TEST' }, 10, null)).items.map((i) => i.id), [rows[0]!.id])
      t.same((await s.listNotifications({ originalTransactionId: 'otx' }, 10, null)).items.map((i) => i.id), [rows[1]!.id])
      t.same((await s.listNotifications({ deliveryStatus: 'dead', target: 'a' }, 10, null)).items.map((i) => i.id), [rows[0]!.id])
      t.same((await s.listNotifications({ since: now - 600, until: now - 100 }, 10, null)).items.map((i) => i.id), [rows[1]!.id])
      t.same(await s.matchingIds({ bundleId: 'com.other' }, 10), [rows[2]!.id])
      const health = await s.targetHealth('a')
      t.match(health, { pending: 2, dead: 1, delivered: 0, lastError: 'no', lastSuccessAt: null })
      t.ok(health.oldestPendingAt! > 0)
      const gauges = await s.gauges()
      t.same(gauges.pending.map((g) => [g.target, g.n]).sort(), [['a', 2], ['b', 3]])
      t.same(gauges.dead.map((g) => [g.target, g.n]), [['a', 1]])
      t.equal(typeof gauges.pending[0]!.oldest, 'number')
      t.same(gauges.lastReceived.map((l) => [l.environment, l.at]).sort(), [['Production', now], ['Sandbox', now - 1000]])
      t.equal(gauges.quarantined, 0)
      const overview = await s.overview(now)
      t.same(overview.lastReceived, [{ environment: 'Production', at: now, type: 'REFUND' }, { environment: 'Sandbox', at: now - 1000, type: 'TEST' }])
      t.same(overview.last24h, [{ environment: 'Production', verification: 'unverified', n: 2 }, { environment: 'Sandbox', verification: 'unverified', n: 1 }])
      const hours = await s.hourlyCounts(now, 3)
      t.equal(hours.length, 3)
      t.equal(hours.reduce((sum, h) => sum + h.n, 0), 3)
      t.equal(await s.lastReceivedAt('com.example', 'Production'), now - 500)
      t.equal(await s.lastReceivedAt('com.none', 'Production'), null)
      const test = await s.findTestNotification(null, 'Sandbox', now - 2000)
      t.equal(test!.id, rows[0]!.id)
      t.match(test!.deliveries, [{ name: 'a', status: 'dead', attempts: 1, lastStatusCode: 500, lastError: 'no' }, { name: 'b', status: 'pending', attempts: 0 }])
      t.equal((await s.findTestNotification(rows[1]!.notificationUuid!, 'Production', 0))!.id, rows[1]!.id, 'by notificationUUID')
      t.equal(await s.pendingMigrations(), 0)
      t.ok(await s.sizeBytes() > 0)
      await s.probe()
      t.ok((await s.stats()).commits > 0)
    })

    t.test('history runs: insert, progress, resume, last catch-up', async (t) => {
      const { s } = await engine.open(t)
      const run = (over: Partial<NewHistoryRun>): NewHistoryRun => ({
        kind: 'catch-up-start', runKey: 'k1', bundleId: 'com.example', environment: 'Production', startDate: 1000, endDate: 2000,
        onlyFailures: false, startedAt: Date.now(), updatedAt: Date.now(), ...over
      })
      const id = await s.insertRun(run({}))
      t.match(await s.unfinishedRun('k1'), { id, pages: 0, onlyFailures: false })
      t.equal(await s.updateRun(id, { pages: 2, seen: 5, paginationToken: 'tok' }), true)
      t.match(await s.unfinishedRun('k1'), { pages: 2, seen: 5, paginationToken: 'tok' })
      t.equal(await s.lastCaughtUpTo('com.example', 'Production'), null, 'not finished yet')
      await s.updateRun(id, { finishedAt: Date.now() })
      t.equal(await s.unfinishedRun('k1'), null)
      t.equal(await s.lastCaughtUpTo('com.example', 'Production'), 2000)
      const later = await s.insertRun(run({ kind: 'catch-up-periodic', runKey: 'k2', endDate: 3000 }))
      await s.insertRun(run({ kind: 'backfill', runKey: 'k3', onlyFailures: true }))
      t.same((await s.lastCatchUps()).map((r) => r.id), [later], 'the last catch-up per app and environment, backfills aside')
      t.equal(await s.updateRun(999_999, { pages: 1 }), false)
    })

    t.test('alerts: one open episode per event and subject, its messages queued with it, claimed once, settled by their claim only', async (t) => {
      const { s } = await engine.open(t)
      const edge = (over: Partial<AlertEdge> = {}): AlertEdge => ({ event: 'target.failing', subject: 'crm', facts: { pending: 3, failingSince: 1000 }, destinations: ['slack', 'ops'], ...over })
      const first = await s.openAlert(edge(), 5000)
      t.type(first, 'number')
      t.equal(await s.openAlert(edge({ facts: { pending: 9 } }), 5001), null, 'a second open of the same episode is refused and queues nothing')
      t.type(await s.openAlert(edge({ subject: 'other', destinations: [] }), 5002), 'number', 'another subject is another episode')
      let episodes = await s.alertEpisodes()
      t.match(episodes.find((e) => e.subject === 'crm'), { id: first, event: 'target.failing', openedAt: 5000, closedAt: null, facts: { pending: 3, failingSince: 1000 } })
      t.equal((await s.alertHistory(10)).length, 2, 'one message per destination')

      const claimed = await s.claimAlerts(10, 60_000)
      t.same(claimed.map((m) => m.destination).sort(), ['ops', 'slack'])
      t.ok(claimed.every((m) => m.attempts === 1 && m.event === 'target.failing' && m.facts.pending === 3))
      t.same(await s.claimAlerts(10, 60_000), [], 'a leased message is not claimed again')
      const [a, b] = claimed
      t.equal(await s.settleAlert(a!.id, a!.attempts, { status: 'sent' }), true)
      t.equal(await s.settleAlert(a!.id, a!.attempts, { status: 'failed', error: 'late' }), false, 'a settled message stays settled')
      t.equal(await s.settleAlert(b!.id, 99, { status: 'sent' }), false, 'an attempt that does not hold the claim records nothing')
      t.equal(await s.settleAlert(b!.id, b!.attempts, { status: 'pending', nextAttemptAt: Date.now() - 1, error: 'HTTP 500' }), true)
      const again = await s.claimAlerts(10, 60_000)
      t.same(again.map((m) => [m.id, m.attempts]), [[b!.id, 2]], 'due again, second attempt')
      await s.settleAlert(b!.id, 2, { status: 'failed', error: 'gave up' })

      t.equal(await s.closeAlert('target.failing', 'crm', edge({ event: 'target.recovered', facts: { downForMs: 60_000 }, destinations: ['slack'] }), 9000), true)
      t.equal(await s.closeAlert('target.failing', 'crm', edge({ event: 'target.recovered' }), 9001), false, 'closed once')
      episodes = await s.alertEpisodes()
      t.match(episodes.find((e) => e.subject === 'crm'), { closedAt: 9000 })
      t.type(await s.openAlert(edge(), 10_000), 'number', 'a closed episode lets a new one open')
      const history = await s.alertHistory(10)
      t.same(history.map((m) => [m.event, m.destination, m.status]), [
        ['target.failing', 'ops', 'pending'], ['target.failing', 'slack', 'pending'], ['target.recovered', 'slack', 'pending'],
        ['target.failing', 'ops', 'failed'], ['target.failing', 'slack', 'sent']
      ], 'newest first, with each one\'s state')
      t.same((await s.queueAlert({ event: 'test', subject: 'storehook', facts: {}, destinations: ['ops'] }, 11_000)).length, 1)
      t.equal((await s.alertEpisodes()).length, 2, 'the latest episode per event and subject')
      t.equal(await s.pruneAlerts(10_000), 3, 'settled messages and the closed episode older than the cutoff (the recovered message with it)')
      t.same((await s.alertHistory(10)).map((m) => [m.event, m.status]), [['test', 'pending'], ['target.failing', 'pending'], ['target.failing', 'pending']], 'pending messages stay, whatever their age')
      t.equal((await s.alertEpisodes()).filter((e) => e.subject === 'crm').length, 1, 'the open episode stays')
    })

    t.test('alert facts: dead deliveries per target and quarantined payloads since a time', async (t) => {
      const { s } = await engine.open(t)
      const before = Date.now() - 1
      const n = notification()
      await s.enqueue(n, ['a', 'b'], [])
      const [c] = await s.claim('a', 1, 60_000)
      await s.markDead(attempt(c!, 500, 'HTTP 500'))
      await s.quarantine(quarantined(), { maxItems: 10, maxBytes: 1_000_000 })
      t.equal(await s.deadSince('a', before), 1)
      t.equal(await s.deadSince('b', before), 0)
      t.equal(await s.deadSince('a', Date.now() + 1000), 0)
      t.equal(await s.quarantinedSince(before), 1)
      t.equal(await s.quarantinedSince(Date.now() + 1000), 0)
      t.equal(await s.lastPostedAt('Sandbox'), null)
      await s.enqueue(notification({ receivedAt: 5000 }), [], [])
      await s.enqueue(notification({ receivedAt: Date.now() + 10_000, source: 'catch-up' }), [], [])
      t.equal(await s.lastPostedAt('Production'), n.receivedAt, 'the newest Apple posted, not one a catch-up fetched')
    })
  })
}

// Two instances on one database: what PostgreSQL must get right with several.
t.test('PostgreSQL with several instances', { skip: unavailable ?? false }, async (t) => {
  async function two (t: T): Promise<[Storage, Storage, string]> {
    cluster ??= await startPostgres()
    const url = await freshDatabase(cluster)
    const [a, b] = await Promise.all([openPgStorage({ url }), openPgStorage({ url })])
    t.teardown(async () => { await a.outbox.close(); await b.outbox.close() })
    return [a.outbox, b.outbox, url]
  }

  t.test('two instances claiming one target at once never hold the same delivery', async (t) => {
    const [a, b] = await two(t)
    const N = 300
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => a.enqueue(notification(), ['x'], [])))
    }
    const held = new Map<number, string>()
    const overlaps: number[] = []
    async function drain (s: Storage, name: string): Promise<void> {
      for (;;) {
        const claimed = await s.claim('x', 7, 60_000)
        if (claimed.length === 0) return
        for (const c of claimed) {
          if (held.has(c.deliveryId)) overlaps.push(c.deliveryId)
          held.set(c.deliveryId, name)
        }
      }
    }
    await Promise.all([drain(a, 'a'), drain(b, 'b'), drain(a, 'a'), drain(b, 'b')])
    t.same(overlaps, [], 'no delivery claimed twice')
    t.equal(held.size, N, 'every delivery claimed')
    const byA = [...held.values()].filter((v) => v === 'a').length
    t.ok(byA > 0 && byA < N, `both instances took a share (a: ${byA}, b: ${N - byA})`)
  })

  t.test('the same notification enqueued by two instances at once is one notification, one delivery per target', async (t) => {
    const [a, b] = await two(t)
    for (let round = 0; round < 20; round++) {
      const n = notification()
      const results = await Promise.all([a.enqueue(n, ['x', 'y'], []), b.enqueue({ ...n, id: nextId() }, ['x', 'y'], [])])
      t.same(results.map((r) => r.duplicate).sort(), [false, true], `round ${round}: one stored it, one saw a duplicate`)
      t.equal(results[0]!.id, results[1]!.id, 'both answer with the stored id')
      t.same((await deliveriesOf(a, results[0]!.id)).map((d) => d.target), ['x', 'y'])
    }
    t.equal((await a.matchingIds({}, 100)).length, 20)
  })

  t.test('enqueues that arrive together share one commit; one the server refuses fails alone, and no chain id outlives its rollback', async (t) => {
    const [a] = await two(t)
    const round = () => Array.from({ length: 10 }, () => notification())
    const first = round()
    await Promise.all(first.map((n) => a.enqueue(n, ['x'], [])))
    t.ok((await a.stats()).largestBatch > 1, 'several enqueues shared one transaction')
    const failedBefore = (await a.stats()).failedCommits
    // A NUL in text is refused by the server (22021), inside the shared
    // transaction; the real body brings a chain new to this database, first
    // inserted in that transaction, which is rolled back.
    const good = [...round(), notification({ body: REAL })]
    const bad = notification({ bundleId: 'com.example\u0000' })
    const results = await Promise.allSettled([...good.slice(0, 5), bad, ...good.slice(5)].map((n) => a.enqueue(n, ['x'], [])))
    t.same(results.map((r) => r.status === 'rejected'), [false, false, false, false, false, true, ...good.slice(5).map(() => false)], 'only the refused one fails')
    t.match((results[5] as PromiseRejectedResult).reason, { code: '22021' })
    t.ok((await a.stats()).failedCommits > failedBefore, 'the shared transaction failed and its ops ran again alone')
    t.equal((await a.matchingIds({}, 100)).length, 21, 'every other notification is stored')
    // The chain's id is read from the row committed by the retry, not the rolled-back one.
    const again = notification({ body: REAL })
    await a.enqueue(again, ['x'], [])
    t.ok((await a.getNotification(again.id))!.notification.body!.equals(REAL), 'a body stored with the cached chain id reads back as received')
  })

  t.test('a starting instance reclaims only expired leases, never a live instance\'s', async (t) => {
    const [a, b] = await two(t)
    await a.enqueue(notification(), ['x'], [])
    await a.enqueue(notification(), ['x'], [])
    const [live] = await a.claim('x', 1, 60_000)
    await a.claim('x', 1, 0)
    t.equal(await b.reclaimLeases(), 1, 'only the lease that ended')
    t.equal(await a.complete(attempt(live!)), true, 'the live holder still records its outcome')
  })

  t.test('a durable op commits waiting for the WAL flush, a relaxed one does not', async (t) => {
    cluster ??= await startPostgres()
    const database = openPg(await freshDatabase(cluster), { max: 1 })
    t.teardown(() => database.close())
    const setting = (q: Q): Promise<string> => q.execute<{ synchronous_commit: string }>(sql`SHOW synchronous_commit`).then((r) => r.rows[0]!.synchronous_commit)
    t.equal(await inTransaction(database.pool, 'durable', setting), 'on')
    t.equal(await inTransaction(database.pool, 'relaxed', setting), 'off')
    t.equal(await inTransaction(database.pool, 'durable', setting), 'on', 'SET LOCAL ended with its transaction: the pooled connection went back as it came')
    await t.rejects(inTransaction(database.pool, 'durable', (q) => q.execute(sql`SELECT 1/0`)), /Failed query: SELECT 1\/0/)
    t.equal(await inTransaction(database.pool, 'durable', setting), 'on', 'a failed transaction is rolled back and its connection reused')
  })

  t.test('a failed op rejects with the driver\'s error: neither the SQL nor its parameters, so a log of it holds no payload', async (t) => {
    const [a] = await two(t)
    // An attempt for a delivery that does not exist: the foreign key refuses it.
    const err = await a.complete({ deliveryId: 999_999, fence: 1, attempt: 1, startedAt: 0, durationMs: 1, statusCode: 200, error: null, responseExcerpt: 'SECRET-EXCERPT' })
      .then(() => null, (e: unknown) => e)
    t.match(err, { code: '23503' }, 'the foreign key violation, as PostgreSQL reported it')
    t.notMatch(JSON.stringify({ ...(err as object), message: (err as Error).message }), /SECRET-EXCERPT|insert into/i)
  })

  t.test('a database with synchronous_commit off is refused at start, without the password', async (t) => {
    cluster ??= await startPostgres()
    const url = await freshDatabase(cluster)
    const admin = new pg.Client({ connectionString: cluster.url })
    await admin.connect()
    await admin.query(`ALTER DATABASE ${new URL(url).pathname.slice(1)} SET synchronous_commit = off`)
    await admin.end()
    const withPassword = new URL(url)
    withPassword.password = 'hunter2-secret'
    await t.rejects(openPgStorage({ url: withPassword.toString() }), { name: 'ConfigError', message: /DATABASE_URL: .*synchronous_commit = off/ })
    const err = await openPgStorage({ url: withPassword.toString() }).catch((e: Error) => e)
    t.notMatch(String((err as Error).message), /hunter2/, 'the password is masked')
  })

  t.test('a database that is down rejects ops at once, never hangs them; when it returns the same storage works again', async (t) => {
    // A cluster of its own: this one is stopped and started.
    const own = await startPostgres()
    try {
      const url = await freshDatabase(own)
      const { outbox } = await openPgStorage({ url, connectTimeoutMs: 2000, statementTimeoutMs: 2000 })
      try {
        await outbox.enqueue(notification(), ['x'], [])
        await own.restart(async () => {
          const started = Date.now()
          await t.rejects(outbox.enqueue(notification(), ['x'], []), 'an enqueue while the database is down fails (ingest answers 503)')
      await t.rejects(outbox.claim('x', 10, 60_000), 'so does a claim')
          await t.rejects(outbox.gauges(), 'and a read')
          t.ok(Date.now() - started < 10_000, 'within the timeouts, not hanging')
        })
        let stored = false
        for (let i = 0; i < 12 && !stored; i++) stored = await outbox.enqueue(notification(), ['x'], []).then(() => true, () => false)
        t.ok(stored, 'an enqueue succeeds once the database is back, with no restart of storehook')
        t.equal((await outbox.targetHealth('x')).pending, 2, 'what was committed before is there; the failed one is not')
      } finally {
        await outbox.close()
      }
    } finally {
      await own.stop()
    }
  })

  t.test('the server dropping every connection fails no more than the ops in flight; later ones succeed', async (t) => {
    const [a, , url] = await two(t)
    await a.enqueue(notification(), ['x'], [])
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.teardown(() => admin.end())
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
    // An idle connection the server closed may fail the first op that takes it; the pool then opens a new one.
    let stored = false
    for (let i = 0; i < 12 && !stored; i++) stored = await a.enqueue(notification(), ['x'], []).then(() => true, () => false)
    t.ok(stored, 'an enqueue succeeds after the drop, with no restart')
    t.equal((await a.targetHealth('x')).pending, 2)
  })
})
