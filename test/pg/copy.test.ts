// `storehook copy --to <postgres URL>` (issue 16 item 3): a SQLite file with
// every kind of row copied into a real PostgreSQL server, read back through
// the PostgreSQL engine; interrupted and resumed; refused targets. The
// command runs as the program does (dist/, a child process), so
// `npx tsc -p tsconfig.build.json` first.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { deflateRawSync, inflateSync } from 'node:zlib'
import { join } from 'node:path'
import { asc, eq, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import t from 'tap'
import { openDatabase } from '../../src/db/client.ts'
import { holdLock, migratePg, openPg } from '../../src/db/pg-client.ts'
import * as schemaPg from '../../src/db/schema-pg.ts'
import * as schema from '../../src/db/schema.ts'
import { loadBody as loadSqliteBody } from '../../src/outbox/bodies.ts'
import { COPY_TABLES, copiedForm, copyTablesOf, type CopyRow, type CopyTable } from '../../src/outbox/copy-tables.ts'
import { dedupeKeyOf, type ClaimedDelivery, type NewNotification, type Storage } from '../../src/outbox/engine.ts'
import { openStorage } from '../../src/outbox/open-storage.ts'
import { loadBody } from '../../src/outbox/pg/bodies.ts'
import { COPY_LOCK } from '../../src/outbox/pg/copy.ts'
import { openPgStorage } from '../../src/outbox/pg/engine.ts'
import { makeChain, signNotification } from '../helpers/apple-chain.ts'
import { tempDir, until } from '../helpers/app.ts'
import { generator } from '../helpers/generated-bodies.ts'
import { freshDatabase, postgresUnavailable, startPostgres, type Cluster } from '../helpers/postgres.ts'
import { BIN, NODE, runCli } from '../helpers/process.ts'

const unavailable = postgresUnavailable()
let cluster: Cluster | null = null
t.teardown(async () => { await cluster?.stop() })

const SQLITE_TABLES = copyTablesOf<unknown>(schema)
const PG_TABLES = copyTablesOf<unknown>(schemaPg)

let seq = 0
const nextId = (): string => `0190${String(++seq).padStart(8, '0')}-0000-7000-8000-000000000000`
function notification (body: Buffer, verification: 'verified' | 'unverified' = 'verified'): NewNotification {
  const id = nextId()
  return { id, dedupeKey: dedupeKeyOf(id, body), receivedAt: Date.now(), source: 'webhook', version: 2, notificationUuid: id, notificationType: 'DID_RENEW', environment: 'Production', bundleId: 'com.example', verification, body }
}
const attemptOf = (c: { deliveryId: number, fence: number, attempt: number }, statusCode: number | null) => ({ deliveryId: c.deliveryId, fence: c.fence, attempt: c.attempt, startedAt: Date.now(), durationMs: 3, statusCode, error: statusCode === 200 ? null : 'refused', responseExcerpt: 'no' })

interface Source { path: string, bodies: Map<string, Buffer>, retryAt: number }

// A SQLite file with every kind of row: bodies in every encoding (the codec's
// current ones through the engine; deflate and deflate-chain, written by
// earlier versions, and raw, from before compression, planted by hand),
// deliveries delivered, pending with a retry scheduled, leased, dead;
// attempts; quarantined payloads, one released; history runs. `extra` more
// notifications, for copies that take many batches.
async function makeSource (t: { teardown: (fn: () => void) => void }, extra = 0): Promise<Source> {
  const path = join(tempDir(t), 'source.db')
  const { outbox } = await openStorage({ databasePath: path, databaseUrl: null }, { busyTimeoutMs: 2000 })
  const s: Storage = outbox
  const bodies = new Map<string, Buffer>()
  const chains = [makeChain(), makeChain()]
  // Two V1-like bodies with no chain (zlib), one that does not compress (raw).
  const all: Buffer[] = [Buffer.from(JSON.stringify({ signedPayload: signNotification(chains[0]!) })), Buffer.from(`{"v1":"${'ab'.repeat(300)}"}`), Buffer.from(`{"v1":"${'cd'.repeat(300)}"}`), Buffer.from([0xff, 0x00, 0x13])]
  for (let seed = 1; seed <= 12 + extra; seed++) {
    const g = generator(seed, chains)
    all.push(g.make(g.kind()))
  }
  const ids: string[] = []
  for (const body of all) {
    const n = notification(body)
    await s.enqueue(n, ['a'], [])
    bodies.set(n.id, body)
    ids.push(n.id)
  }
  for (const c of await s.claim('a', 1000, 60_000)) await s.complete(attemptOf(c, 200))
  // One notification to three more targets: a retry scheduled, a lease held, a dead end.
  const busy = notification(all[0]!)
  busy.dedupeKey = dedupeKeyOf(busy.id, Buffer.from('another'))
  await s.enqueue(busy, ['retry', 'leased', 'dead'], [])
  bodies.set(busy.id, all[0]!)
  // Far enough for the copy's child process to start and finish first.
  const retryAt = Date.now() + 15_000
  await s.scheduleRetry(attemptOf((await s.claim('retry', 1, 60_000))[0]!, 503), retryAt)
  await s.claim('leased', 1, 600_000)
  await s.markDead(attemptOf((await s.claim('dead', 1, 60_000))[0]!, 400))
  const caps = { maxItems: 100, maxBytes: 10_000_000 }
  const q1 = await s.quarantine({ receivedAt: Date.now(), code: 'SIGNATURE_INVALID', reason: 'bad', body: all[0]!, bytes: all[0]!.length }, caps)
  await s.quarantine({ receivedAt: Date.now(), code: 'BUNDLE_ID', reason: 'other app', body: Buffer.from('x'.repeat(300)), bytes: 300 }, caps)
  await s.markReleased(q1.id, ids[0]!)
  const run = { kind: 'backfill' as const, runKey: 'k', bundleId: 'com.example', environment: 'Production' as const, startDate: 1000, endDate: 2000, onlyFailures: true, startedAt: Date.now(), updatedAt: Date.now() }
  await s.updateRun(await s.insertRun(run), { pages: 2, seen: 5, finishedAt: Date.now() })
  await s.insertRun({ ...run, kind: 'catch-up-start', runKey: 'c', onlyFailures: false })
  await s.close()

  // Earlier encodings, planted: a zlib-chain body re-deflated as deflate-chain (the same
  // skeleton, raw deflate), a zlib body as deflate, and one stored as received.
  const side = openDatabase(path)
  try {
    const rows = side.db.select().from(schema.notifications).orderBy(asc(schema.notifications.id)).all()
    const chained = rows.find((r) => r.bodyEncoding === 'zlib-chain')!
    const zlibbed = rows.find((r) => r.bodyEncoding === 'zlib')!
    const plant = (id: string, body: Buffer, bodyEncoding: 'deflate' | 'deflate-chain' | 'raw', bodyChainId: number | null): void => {
      side.db.update(schema.notifications).set({ body, bodyEncoding, bodyChainId }).where(eq(schema.notifications.id, id)).run()
    }
    plant(chained.id, Buffer.concat([chained.body.subarray(0, 8), deflateRawSync(inflateSync(chained.body.subarray(8)))]), 'deflate-chain', chained.bodyChainId)
    plant(zlibbed.id, deflateRawSync(inflateSync(zlibbed.body)), 'deflate', null)
    const plain = rows.find((r) => r.id !== chained.id && r.id !== zlibbed.id && r.bodyEncoding !== 'raw')!
    plant(plain.id, bodies.get(plain.id)!, 'raw', null)
    // The planted rows read back as the bodies they stand for, on SQLite first.
    for (const r of side.db.select().from(schema.notifications).all()) {
      if (!loadSqliteBody(side.db, r).equals(bodies.get(r.id)!)) throw new Error(`planted body ${r.id} does not read back`)
    }
  } finally {
    side.close()
  }
  return { path, bodies, retryAt }
}

function sqliteRows (path: string): Record<CopyTable, CopyRow[]> {
  const side = openDatabase(path, { readonly: true })
  try {
    return Object.fromEntries(COPY_TABLES.map((name) => {
      const table = SQLITE_TABLES[name] as typeof schema.attempts
      return [name, (side.db.select().from(table).orderBy(asc(table.id)).all() as unknown as CopyRow[]).map((r) => copiedForm(name, r))]
    })) as Record<CopyTable, CopyRow[]>
  } finally {
    side.close()
  }
}

async function pgRows (url: string): Promise<Record<CopyTable, CopyRow[]>> {
  const side = openPg(url, { max: 1 })
  try {
    const out = {} as Record<CopyTable, CopyRow[]>
    for (const name of COPY_TABLES) {
      const table = PG_TABLES[name] as typeof schemaPg.attempts
      out[name] = await side.db.select().from(table).orderBy(name === 'notifications' ? sql`${table.id} COLLATE "C"` : asc(table.id)) as unknown as CopyRow[]
    }
    return out
  } finally {
    await side.close()
  }
}

const copy = (path: string, url: string, ...flags: string[]) =>
  runCli(['copy', '--to', url, ...flags], { DATABASE_PATH: path }, { ...NODE, timeoutMs: 60_000 })

t.test('storehook copy', { skip: unavailable ?? false }, async (t) => {
  cluster = await startPostgres()

  t.test('copies every row, bodies byte for byte, and the PostgreSQL engine takes over the schedule', async (t) => {
    const source = await makeSource(t)
    const url = await freshDatabase(cluster!)
    const r = await copy(source.path, url)
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^Copying .* into postgres:\/\/postgres@127\.0\.0\.1:\d+\/t_\w+: .*notifications/)
    t.match(r.stdout, /Copied and checked: .*; deliveries 2 pending, \d+ delivered, 1 dead; quarantine 2 items/, 'the summary (the leased delivery is pending, not in flight)')
    const want = sqliteRows(source.path)
    t.same(Object.fromEntries(COPY_TABLES.map((n) => [n, want[n].length > 0])), Object.fromEntries(COPY_TABLES.map((n) => [n, true])), 'the source has rows in every table')
    t.same(new Set(want.notifications.map((r) => r.bodyEncoding)), new Set(['raw', 'zlib', 'zlib-chain', 'deflate', 'deflate-chain']), 'every encoding')
    const got = await pgRows(url)
    for (const name of COPY_TABLES) t.strictSame(got[name], want[name], `${name}: every row equal`)
    const leased = got.deliveries.find((d) => d.target === 'leased')!
    t.match(leased, { status: 'pending', leaseUntil: null, attempts: 1 }, 'the lease of the stopped machine is cleared')

    const pg = openPg(url, { max: 1 })
    t.teardown(() => pg.close())
    for (const row of await pg.db.select().from(schemaPg.notifications)) {
      t.ok((await loadBody(drizzle(pg.pool), row)).equals(source.bodies.get(row.id)!), `body of ${row.id} (${row.bodyEncoding}) byte for byte`)
    }
    const [totals] = await pg.db.select().from(schemaPg.quarantineTotals)
    t.same(totals, { id: 1, items: 2, bytes: want.quarantine.reduce((s, q) => s + (q.bytes as number), 0) }, 'the triggers\' running totals')

    const { outbox } = await openPgStorage({ url })
    t.teardown(() => outbox.close())
    t.equal((await outbox.claim('leased', 10, 60_000)).length, 1, 'the leased delivery is due at once')
    t.equal((await outbox.claim('dead', 10, 60_000)).length, 0, 'a dead delivery stays dead')
    t.equal(await outbox.nextDueAt('retry'), source.retryAt, 'the retry keeps its time')
    t.same(await outbox.claim('retry', 10, 60_000), [], 'not before its time')
    const claimed: ClaimedDelivery[] = []
    await until(async () => { claimed.push(...await outbox.claim('retry', 10, 60_000)); return claimed.length > 0 }, 30_000, 'the retry at its time')
    const due = claimed[0]
    t.ok(Date.now() >= source.retryAt)
    t.match(due, { attempt: 2 }, 'the attempt count carries on')
    t.ok(due!.body.equals(source.bodies.get(due!.notificationId)!))
    const id = await outbox.insertRun({ kind: 'backfill', runKey: 'new', bundleId: 'b', environment: 'Sandbox', startDate: 1, endDate: 2, onlyFailures: false, startedAt: 1, updatedAt: 1 })
    t.ok(id > Math.max(...want.history_runs.map((r) => r.id as number)), 'new rows take ids past the copied ones')

    const again = await copy(source.path, url)
    t.equal(again.code, 1, 'a target the new engine has written to is refused')
    t.match(again.stderr, /^storehook: postgres:\/\/postgres@127\.0\.0\.1:\d+\/t_\w+ already holds history_runs that are not from a copy of this database[^\n]*\n$/)
  })

  t.test('an interrupted copy continues where it stopped, with no duplicate, and checks the counts', async (t) => {
    const source = await makeSource(t, 60)
    const url = await freshDatabase(cluster!)
    const first = await copy(source.path, url, '--batch-size', '3', '--max-batches', '8')
    t.equal(first.code, 0, first.stderr)
    t.match(first.stdout, /Stopped after 8 batch\(es\) as asked \(--max-batches\), in \w+ at \d+\/\d+: run storehook copy again to continue/)
    t.notMatch(first.stdout, /Copied and checked/)
    // Killed mid-copy, as soon as it has committed a batch of its own:
    // whatever it committed is a prefix a later run continues from.
    const total = sqliteRows(source.path)
    const sourceRows = COPY_TABLES.reduce((n, name) => n + total[name].length, 0)
    const pg = openPg(url, { max: 1 })
    t.teardown(() => pg.close())
    const copied = async (): Promise<number> => Number((await pg.pool.query<{ n: string }>(`SELECT ${COPY_TABLES.map((n) => `(SELECT count(*) FROM ${n})`).join(' + ')} AS n`)).rows[0]!.n)
    const before = await copied()
    t.ok(before > 0 && before <= 8 * 3, `at most 8 batches of 3 rows (${before})`)
    const child = spawn(process.execPath, [BIN, 'copy', '--to', url, '--batch-size', '1'], { env: { PATH: process.env.PATH ?? '', DATABASE_PATH: source.path }, stdio: 'ignore' })
    const exited = once(child, 'exit')
    await until(async () => await copied() > before + 5, 30_000, 'the child copying')
    child.kill('SIGKILL')
    await exited
    const atKill = await copied()
    t.ok(atKill > before && atKill < sourceRows, `killed mid-copy (${atKill} of ${sourceRows} rows)`)
    const second = await copy(source.path, url, '--batch-size', '3')
    t.equal(second.code, 0, second.stderr)
    t.match(second.stdout, /Copied and checked/)
    t.strictSame(await pgRows(url), sqliteRows(source.path), 'every row once')
  })

  t.test('a file written during the copy fails the copy; a second run copies the rest', async (t) => {
    const source = await makeSource(t, 60)
    const url = await freshDatabase(cluster!)
    // As the copy would: the table exists before the poll below reads it.
    await migratePg(url)
    const pg = openPg(url, { max: 1 })
    t.teardown(() => pg.close())
    const copied = async (): Promise<number> => Number((await pg.pool.query<{ n: string }>('SELECT count(*) AS n FROM notifications')).rows[0]!.n)
    const child = spawn(process.execPath, [BIN, 'copy', '--to', url, '--batch-size', '1'], { env: { PATH: process.env.PATH ?? '', DATABASE_PATH: source.path }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const exited = once(child, 'exit') as Promise<[number | null]>
    // Its snapshot is taken before its first row; paused mid-copy while the file is written.
    await until(async () => await copied() > 0, 30_000, 'the copy under way')
    child.kill('SIGSTOP')
    const atPause = await copied()
    const side = openDatabase(source.path)
    side.db.insert(schema.historyRuns).values({ kind: 'backfill', runKey: 'late', bundleId: 'b', environment: 'Sandbox', startDate: 1, endDate: 2, onlyFailures: false, startedAt: 1, updatedAt: 1 }).run()
    side.close()
    child.kill('SIGCONT')
    const [code] = await exited
    t.ok(atPause < sqliteRows(source.path).notifications.length, `paused mid-copy (${atPause} notifications copied)`)
    t.equal(code, 1)
    t.match(stderr, /^storehook: \S+source\.db was written during the copy: stop every storehook using it, then run storehook copy again[^\n]*\n$/)
    const again = await copy(source.path, url)
    t.equal(again.code, 0, again.stderr)
    t.strictSame(await pgRows(url), sqliteRows(source.path), 'the late row too')
  })

  t.test('refused: a target holding other data, a bad URL, an unreachable server; the password never shown', async (t) => {
    const source = await makeSource(t)
    const url = await freshDatabase(cluster!)
    const { outbox } = await openPgStorage({ url })
    await outbox.enqueue(notification(Buffer.from('{"other":1}')), ['a'], [])
    await outbox.close()
    const other = await copy(source.path, url)
    t.equal(other.code, 1)
    t.match(other.stderr, /^storehook: postgres:\/\/[^\n]* already holds notifications that are not from a copy of this database[^\n]*\n$/)

    // Counts checked at the end: totals that were wrong before the copy stay wrong after it.
    const skewed = await freshDatabase(cluster!)
    await migratePg(skewed)
    const side = openPg(skewed, { max: 1 })
    await side.pool.query('UPDATE quarantine_totals SET items = items + 5')
    await side.close()
    const differ = await copy(source.path, skewed)
    t.equal(differ.code, 1)
    t.match(differ.stderr, /^storehook: the copy does not match the file: quarantine totals 2 items \d+ bytes in the file, 7 items \d+ bytes kept\n$/)

    const fresh = await freshDatabase(cluster!)
    const lock = await holdLock(fresh, COPY_LOCK)
    t.ok(lock !== null)
    const twice = await copy(source.path, fresh)
    await lock!.release()
    t.equal(twice.code, 1)
    t.match(twice.stderr, /^storehook: cannot copy into postgres:[^\n]*: another storehook copy into this database is running\n$/, 'one copy at a time')

    const missing = await copy(join(tempDir(t), 'typo.db'), await freshDatabase(cluster!))
    t.equal(missing.code, 1)
    t.match(missing.stderr, /^storehook: DATABASE_PATH \S+typo\.db does not exist: set it to the file to copy\n$/, 'no empty file copied in its place')

    const secret = new URL(url)
    secret.password = 's3cret-pw'
    secret.port = '1'
    const unreachable = await copy(source.path, secret.toString())
    t.equal(unreachable.code, 1)
    t.match(unreachable.stderr, /^storehook: cannot copy into postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/[^\n]*\n$/)
    const bad = await copy(source.path, 'mysql://u:s3cret-pw@h/db')
    t.equal(bad.code, 2)
    t.match(bad.stderr, /^storehook: copy: --to must be a postgres:\/\/ or postgresql:\/\/ URL[^\n]*\n$/)
    for (const r of [unreachable, bad]) t.notMatch(r.stdout + r.stderr, /s3cret-pw/, 'no password')
  })
})
