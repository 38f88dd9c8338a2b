// Bodies through the SQLite storage (src/outbox/bodies.ts): stored
// compressed against their chain, kept once in body_chains, and given back
// byte for byte by every read that returns a body (claim, detail,
// quarantine). Old databases keep working, and the compaction pass rewrites
// their rows in place.
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import { migrate as drizzleMigrate } from 'drizzle-orm/better-sqlite3/migrator'
import t from 'tap'
import { migrate, migrationsFolder, openDatabase, type Db } from '../../src/db/client.ts'
import { bodyChains, notifications, quarantine } from '../../src/db/schema.ts'
import type { VerificationStatus } from '../../src/db/vocabulary.ts'
import { MAX_UNPROVEN_CHAINS } from '../../src/outbox/bodies.ts'
import { compactAll } from '../../src/outbox/compaction.ts'
import { COMPACTION_START, dedupeKeyOf } from '../../src/outbox/engine.ts'
import { getNotification } from '../../src/outbox/queries.ts'
import * as store from '../../src/outbox/store.ts'
import { makeChain, notificationPayload, signNotification } from '../helpers/apple-chain.ts'
import { tempDir } from '../helpers/app.ts'
import { generator } from '../helpers/generated-bodies.ts'
import { runCli } from '../helpers/process.ts'

const FIXTURES = join(import.meta.dirname, '../fixtures')
const REAL = readFileSync(join(FIXTURES, 'apple/real/production-TEST-2024-10-17.json'))
const CAPS = { maxItems: 1000, maxBytes: 100_000_000 }

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })
}

function setup (t: Parameters<typeof tempDir>[0]) {
  const path = join(tempDir(t), 's.db')
  const database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())
  return { ...database, path }
}

let seq = 0
function row (body: Buffer, verification: VerificationStatus = 'unverified'): store.NewNotification {
  const id = `n${String(++seq).padStart(8, '0')}`
  return { id, dedupeKey: dedupeKeyOf(null, Buffer.concat([body, Buffer.from(id)])), receivedAt: 1000, source: 'webhook', version: 2, notificationType: 'TEST', verification, body }
}

// Stores the body with one target, claims it: what the target would be sent.
function storeAndClaim (db: Db, body: Buffer, verification: VerificationStatus = 'unverified'): { id: string; sent: Buffer } {
  const n = row(body, verification)
  store.enqueue(db, n, ['a'], 1000)
  const [claimed] = store.claimDue(db, 'a', 1, 1000, 60_000)
  return { id: n.id, sent: claimed!.body }
}

const storedForm = (db: Db, id: string) => db.select({ encoding: notifications.bodyEncoding, chainId: notifications.bodyChainId, bytes: sql<number>`length(${notifications.body})` })
  .from(notifications).where(eq(notifications.id, id)).get()!
const chainCount = (db: Db): number => db.select({ n: sql<number>`count(*)` }).from(bodyChains).get()!.n

t.test('every fixture and Apple\'s real notification is claimed byte for byte, and stored smaller', async t => {
  const { db } = setup(t)
  for (const path of files(FIXTURES)) {
    const body = readFileSync(path)
    const { id, sent } = storeAndClaim(db, body)
    t.ok(sent.equals(body), path)
    t.ok(storedForm(db, id).bytes <= body.length, `${path} not bigger at rest`)
  }
  const { id, sent } = storeAndClaim(db, REAL, 'verified')
  t.ok(sent.equals(REAL), 'Apple\'s real TEST notification')
  const form = storedForm(db, id)
  t.equal(form.encoding, 'zlib-chain')
  t.ok(form.bytes < REAL.length / 8, `stored in ${form.bytes} of ${REAL.length} bytes`)
  t.ok(getNotification(db, id)!.notification.body!.equals(REAL), 'the detail view reads it back too')
})

t.test('10,000 generated bodies go through the storage and come back byte for byte', async t => {
  const { transaction, db } = setup(t)
  const chains = [makeChain(), makeChain()]
  const failures: number[] = []
  const encodings: Record<string, number> = {}
  for (let start = 1; start <= 10_000; start += 500) {
    // As the writer does: many rows to a commit.
    transaction(() => {
      for (let seed = start; seed < start + 500; seed++) {
        const g = generator(seed, chains)
        const body = g.make(g.kind())
        const { id, sent } = storeAndClaim(db, body, seed % 2 === 0 ? 'verified' : 'unverified')
        const form = storedForm(db, id)
        encodings[form.encoding] = (encodings[form.encoding] ?? 0) + 1
        if (!sent.equals(body) || form.bytes > body.length) failures.push(seed)
      }
    })
  }
  t.same(failures, [], `every body exact and never bigger at rest: ${JSON.stringify(encodings)}`)
  t.ok((encodings['zlib-chain'] ?? 0) > 1000, 'many were stored against their chain')
})

t.test('a chain is stored once, on first sight, and only as far as the sender has proven it', async t => {
  const { db } = setup(t)
  const apple = makeChain()
  const body = (): Buffer => Buffer.from(JSON.stringify({ signedPayload: signNotification(apple, notificationPayload({ notificationUUID: crypto.randomUUID() })) }))
  storeAndClaim(db, body(), 'verified')
  storeAndClaim(db, body(), 'verified')
  t.equal(chainCount(db), 1, 'two bodies, one chain row')

  // A refused body never adds a chain: it compresses against a stored one, or plainly.
  const stranger = makeChain()
  const refused = Buffer.from(JSON.stringify({ signedPayload: signNotification(stranger) }))
  const { id: qid } = store.quarantineRefused(db, { receivedAt: 1, code: 'X', reason: 'r', bytes: 0, body: refused }, CAPS)
  t.equal(chainCount(db), 1, 'a quarantined body adds no chain')
  t.equal(db.select({ e: quarantine.bodyEncoding }).from(quarantine).where(eq(quarantine.id, qid)).get()!.e, 'zlib')
  t.ok(store.findQuarantined(db, qid)!.body!.equals(refused), 'and reads back exactly')
  const known = body()
  const { id: kid } = store.quarantineRefused(db, { receivedAt: 1, code: 'X', reason: 'r', bytes: 0, body: known }, CAPS)
  t.equal(db.select({ e: quarantine.bodyEncoding }).from(quarantine).where(eq(quarantine.id, kid)).get()!.e, 'zlib-chain', 'a refused body with a stored chain uses it')
  t.ok(store.findQuarantined(db, kid)!.body!.equals(known))

  // Unproven chains (VERIFY_SIGNATURES off, V1) stop at the cap; proven ones do not.
  for (let i = chainCount(db); i < MAX_UNPROVEN_CHAINS + 3; i++) {
    const b = Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) }))
    const { sent } = storeAndClaim(db, b, 'unverified')
    t.ok(sent.equals(b))
  }
  t.equal(chainCount(db), MAX_UNPROVEN_CHAINS, 'unproven chains stop at the cap')
  const past = storeAndClaim(db, Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) })), 'unverified')
  t.equal(storedForm(db, past.id).encoding, 'zlib', 'past the cap an unproven body is deflated plainly')
  storeAndClaim(db, Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) })), 'verified')
  t.equal(chainCount(db), MAX_UNPROVEN_CHAINS + 1, 'a verified chain is stored whatever the count')
})

t.test('a chain row rolled back with its transaction leaves no wrong chain behind', async t => {
  const { transaction, db } = setup(t)
  const one = Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) }))
  const two = Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) }))
  t.throws(() => transaction(() => {
    storeAndClaim(db, one, 'verified')
    throw new Error('the commit failed')
  }), /the commit failed/)
  t.equal(chainCount(db), 0, 'the chain went with the transaction')
  // The next chain gets the id the rolled-back one had.
  const { id, sent } = storeAndClaim(db, two, 'verified')
  t.equal(storedForm(db, id).chainId, 1)
  t.ok(sent.equals(two), 'and its bodies read back with their own chain')
  t.ok(storeAndClaim(db, one, 'verified').sent.equals(one), 'as do the first chain\'s, stored again')
})

t.test('a body that cannot be read back kills its delivery with the reason, and the target goes on', async t => {
  const { db } = setup(t)
  const body = Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) }))
  const broken = row(body, 'verified')
  store.enqueue(db, broken, ['a'], 1000)
  const fine = row(Buffer.from(JSON.stringify({ signedPayload: signNotification(makeChain()) })), 'verified')
  store.enqueue(db, fine, ['a'], 1001)
  // The chain row rewritten under the body: the stream's digest no longer matches.
  db.run(sql`PRAGMA foreign_keys = OFF`)
  db.update(notifications).set({ bodyChainId: 2 }).where(eq(notifications.id, broken.id)).run()
  const claimed = store.claimDue(db, 'a', 10, 2000, 60_000)
  t.same(claimed.map((c) => c.notificationId), [fine.id], 'only the readable one is sent')
  const dead = db.all<{ status: string; last_error: string }>(sql`SELECT status, last_error FROM deliveries WHERE notification_id = ${broken.id}`)[0]!
  t.equal(dead.status, 'dead')
  t.match(dead.last_error, /the stored body cannot be read: zlib-chain body read with another chain/)
})

// A database as storehook wrote it before bodies were compressed: the
// migrations up to 0004, rows with raw bodies.
function oldDatabase (t: Parameters<typeof tempDir>[0]): { path: string; bodies: Buffer[]; later: number } {
  const dir = tempDir(t)
  const folder = join(dir, 'migrations')
  mkdirSync(join(folder, 'meta'), { recursive: true })
  const journal = JSON.parse(readFileSync(join(migrationsFolder(), 'meta/_journal.json'), 'utf8')) as { entries: Array<{ tag: string }> }
  // The migrations after these (0005 and whatever came since) apply on open.
  const later = journal.entries.filter((e) => e.tag >= '0005').length
  journal.entries = journal.entries.filter((e) => e.tag < '0005')
  writeFileSync(join(folder, 'meta/_journal.json'), JSON.stringify(journal))
  for (const e of journal.entries) cpSync(join(migrationsFolder(), `${e.tag}.sql`), join(folder, `${e.tag}.sql`))
  const path = join(dir, 'old.db')
  const old = openDatabase(path)
  drizzleMigrate(old.db, { migrationsFolder: folder })
  const chain = makeChain()
  const bodies = Array.from({ length: 250 }, () => Buffer.from(JSON.stringify({ signedPayload: signNotification(chain, notificationPayload({ notificationUUID: crypto.randomUUID() })) })))
  // In the columns those migrations made: written by hand, not by today's schema.
  bodies.forEach((b, i) => {
    const id = `old-${String(i).padStart(4, '0')}`
    old.db.run(sql`INSERT INTO notifications (id, dedupe_key, received_at, source, version, notification_type, verification, body)
      VALUES (${id}, ${id}, 1000, 'webhook', 2, 'TEST', 'verified', ${b})`)
    old.db.run(sql`INSERT INTO deliveries (notification_id, target, status, next_attempt_at, retry_since, created_at, updated_at)
      VALUES (${id}, 'a', 'pending', 0, 0, 0, 0)`)
  })
  old.db.run(sql`INSERT INTO quarantine (received_at, code, reason, bytes, body) VALUES (1, 'X', 'r', ${bodies[0]!.length}, ${bodies[0]!})`)
  old.close()
  return { path, bodies, later }
}

t.test('an old database: its raw rows read as they are, and the compaction pass rewrites them in place', async t => {
  const { path, bodies, later } = oldDatabase(t)
  const database = openDatabase(path)
  t.teardown(() => database.close())
  t.equal(migrate(database), later, `the ${later} later migrations apply`)
  const { db } = database
  t.ok(getNotification(db, 'old-0000')!.notification.body!.equals(bodies[0]!), 'a raw row reads as it is')
  t.ok(store.findQuarantined(db, 1)!.body!.equals(bodies[0]!))
  const before = db.get<{ bytes: number }>(sql`SELECT sum(length(body)) AS bytes FROM notifications`)!.bytes

  const plan = db.all<{ detail: string }>(sql`EXPLAIN QUERY PLAN SELECT id FROM notifications WHERE body_encoding = 'raw' AND id > 'x' ORDER BY id LIMIT 100`)
  t.match(plan.map((p) => p.detail).join('; '), /USING (COVERING )?INDEX notifications_raw_body/, 'the pass finds raw rows by its partial index, not by reading every body')

  const first = store.compactBodies(db, COMPACTION_START, 100, 2000)
  t.same({ scanned: first.scanned, rewritten: first.rewritten }, { scanned: 100, rewritten: 100 }, 'a batch at a time')
  const rest = await compactAll({ compactBodies: async (cursor, limit) => store.compactBodies(db, cursor, limit, 2000) })
  t.same(rest, { scanned: 151, rewritten: 151 }, 'then the rest, the quarantine included')
  const after = db.get<{ bytes: number }>(sql`SELECT sum(length(body)) AS bytes FROM notifications`)!.bytes
  t.ok(after < before / 5, `the bodies take ${after} bytes, from ${before}`)
  t.equal(chainCount(db), 1, 'their one chain stored once')
  const claimed = store.claimDue(db, 'a', 1000, 3000, 60_000)
  t.equal(claimed.length, bodies.length)
  t.ok(claimed.every((c) => c.body.equals(bodies[Number(c.notificationId.slice(4))]!)), 'every one is sent byte for byte')
  t.ok(store.findQuarantined(db, 1)!.body!.equals(bodies[0]!), 'the quarantined one too')
  t.same(await compactAll({ compactBodies: async (cursor, limit) => store.compactBodies(db, cursor, limit, 4000) }), { scanned: 0, rewritten: 0 }, 'a second pass finds nothing to do')
})

t.test('storehook compact runs the pass now', async t => {
  const { path } = oldDatabase(t)
  const r = await runCli(['compact'], { DATABASE_PATH: path })
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, 'Compressed 251 of 251 uncompressed stored bodies.\n')
  t.equal((await runCli(['compact'], { DATABASE_PATH: path })).stdout, 'Compressed 0 of 0 uncompressed stored bodies.\n')
})

t.test('an empty database has nothing to compact', async t => {
  const { db } = setup(t)
  t.same(store.compactBodies(db, COMPACTION_START, 100, 1), { scanned: 0, rewritten: 0, cursor: { notificationsAfter: 'done', quarantineAfter: 'done' } })
})
