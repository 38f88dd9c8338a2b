// src/db/pg-client.ts against a real PostgreSQL server (test/helpers/postgres.ts):
// the migrations in drizzle/pg/, the lock that keeps two instances from
// racing on them, the synchronous_commit check, and the schema they build.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { eq, is } from 'drizzle-orm'
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core'
import pg from 'pg'
import t from 'tap'
import { isPostgresUrl, maskedUrl, migratePg, openPg, pgMigrationsFolder, synchronousCommit } from '../../src/db/pg-client.ts'
import * as schemaPg from '../../src/db/schema-pg.ts'
import { freshDatabase, postgresUnavailable, startPostgres, type Cluster } from '../helpers/postgres.ts'

const unavailable = postgresUnavailable()
const journal = JSON.parse(readFileSync(join(pgMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
const MIGRATIONS = journal.entries.length
const tables = Object.values(schemaPg).filter((v) => is(v, PgTable)).map((table) => getTableConfig(table))

async function query<T extends pg.QueryResultRow> (url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end()
  }
}

t.test('a postgres:// or postgresql:// URL selects PostgreSQL; anything else is a SQLite path', async (t) => {
  for (const url of ['postgres://u@db/x', 'postgresql://u:p@db:5432/x?sslmode=require', 'POSTGRES://db/x']) t.ok(isPostgresUrl(url), url)
  for (const path of ['data/storehook.db', '/var/lib/postgres/storehook.db', 'postgres.db', 'mysql://db/x', '']) t.notOk(isPostgresUrl(path), path)
})

t.test('maskedUrl: the URL as it may be shown, the password masked wherever it is', async (t) => {
  t.equal(maskedUrl('postgres://app:hunter2@db:5432/x'), 'postgres://app:***@db:5432/x')
  t.equal(maskedUrl('postgresql://app@db/x?password=hunter2&sslmode=require'), 'postgresql://app@db/x?password=***&sslmode=require')
  t.equal(maskedUrl('postgres://db/x'), 'postgres://db/x', 'nothing to mask')
  t.notMatch(maskedUrl('postgres://app:hunter2@[bad/x'), /hunter2/, 'a URL that does not parse is not repeated')
})

if (unavailable !== null) {
  t.test('the PostgreSQL half', { skip: unavailable }, async () => {})
} else {
  let cluster: Cluster
  t.before(async () => { cluster = await startPostgres() })
  t.teardown(() => cluster.stop())

  t.test('migrations apply on an empty database and build the schema of schema-pg.ts', async (t) => {
    const url = await freshDatabase(cluster)
    t.equal(await migratePg(url), MIGRATIONS, 'every migration applied')
    const found = await query<{ table_name: string, column_name: string }>(url,
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
    for (const table of tables) {
      const columns = found.filter((c) => c.table_name === table.name).map((c) => c.column_name).sort()
      t.same(columns, table.columns.map((c) => c.name).sort(), `${table.name}: its columns`)
    }
    t.same([...new Set(found.map((c) => c.table_name))].sort(), tables.map((table) => table.name).sort(), 'no other table')
    const indexes = await query<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'")
    t.same(indexes.map((i) => i.indexname).sort(),
      tables.flatMap((table) => table.indexes.map((i) => i.config.name)).sort(), 'the declared indexes')
  })

  t.test('applying twice is a no-op', async (t) => {
    const url = await freshDatabase(cluster)
    t.equal(await migratePg(url), MIGRATIONS)
    t.equal(await migratePg(url), 0, 'nothing applied the second time')
    const [row] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
    t.equal(Number(row!.n), MIGRATIONS, 'each migration recorded once')
  })

  t.test('two instances migrating one database at once: both succeed, the migrations apply once', async (t) => {
    for (let round = 0; round < 3; round++) {
      const url = await freshDatabase(cluster)
      const applied = await Promise.all([migratePg(url), migratePg(url), migratePg(url)])
      t.same([...applied].sort(), [0, 0, MIGRATIONS], `round ${round}: one applied them all, the others none`)
      const [row] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
      t.equal(Number(row!.n), MIGRATIONS)
    }
  })

  t.test('the synchronous_commit check reads the server\'s real setting', async (t) => {
    const url = await freshDatabase(cluster)
    const before = openPg(url)
    t.same(await synchronousCommit(before), { setting: 'on', flushedBeforeCommit: true }, 'the default: on')
    await before.close()
    const name = new URL(url).pathname.slice(1)
    for (const [setting, flushed] of [['off', false], ['local', true], ['remote_apply', true]] as const) {
      await query(url, `ALTER DATABASE ${name} SET synchronous_commit = ${setting}`)
      const database = openPg(url)
      t.same(await synchronousCommit(database), { setting, flushedBeforeCommit: flushed }, `set on the database: ${setting}`)
      await database.close()
      await database.close()
    }
  })

  t.test('rows round-trip through drizzle: millisecond timestamps as numbers, bodies as the same bytes', async (t) => {
    const url = await freshDatabase(cluster)
    await migratePg(url)
    const database = openPg(url)
    t.teardown(() => database.close())
    const body = Buffer.from([0, 1, 2, 255, 0x7b, 0x22])
    const receivedAt = Date.parse('2026-11-30T05:00:00.123Z')
    const [chain] = await database.db.insert(schemaPg.bodyChains).values({ digest: 'ab'.repeat(32), chain: Buffer.from('chain'), firstSeenAt: receivedAt }).returning()
    await database.db.insert(schemaPg.notifications).values({
      id: '0193-a', dedupeKey: 'k', receivedAt, source: 'webhook', version: 2, notificationType: 'DID_RENEW',
      signedDate: receivedAt - 1, verification: 'verified', body, bodyEncoding: 'deflate-chain', bodyChainId: chain!.id
    })
    const [row] = await database.db.select().from(schemaPg.notifications)
    t.equal(row!.receivedAt, receivedAt, 'bigint read back as the same number')
    t.equal(row!.signedDate, receivedAt - 1)
    t.ok(Buffer.isBuffer(row!.body) && row!.body.equals(body), 'bytea read back as the same bytes')
    t.equal(row!.bodyEncoding, 'deflate-chain')
    const plain = await database.db.insert(schemaPg.notifications).values({
      id: '0193-b', dedupeKey: 'k2', receivedAt, source: 'webhook', version: 1, notificationType: 'RENEWAL', verification: 'unchecked', body
    }).returning()
    t.equal(plain[0]!.bodyEncoding, 'raw', 'body_encoding defaults to raw')
    t.equal(plain[0]!.bodyChainId, null)
    await t.rejects(database.db.insert(schemaPg.notifications).values({
      id: '0193-c', dedupeKey: 'k', receivedAt, source: 'webhook', version: 2, notificationType: 'DID_RENEW', verification: 'verified', body
    }), { cause: { code: '23505' } }, 'the dedupe key is unique')
    await t.rejects(database.db.insert(schemaPg.bodyChains).values({ digest: 'ab'.repeat(32), chain: body, firstSeenAt: receivedAt }), { cause: { code: '23505' } }, 'a chain is stored once')
  })

  t.test('the quarantine totals follow every insert, delete and change of bytes (triggers)', async (t) => {
    const url = await freshDatabase(cluster)
    await migratePg(url)
    const database = openPg(url)
    t.teardown(() => database.close())
    const { quarantine, quarantineTotals } = schemaPg
    const totals = async (): Promise<[number, number]> => {
      const [row] = await database.db.select().from(quarantineTotals)
      return [row!.items, row!.bytes]
    }
    t.same(await totals(), [0, 0], 'one row, zero, from the migration')
    const row = (bytes: number) => ({ receivedAt: 1, code: 'c', reason: 'r', bytes, body: Buffer.alloc(bytes) })
    const ids = (await database.db.insert(quarantine).values([row(10), row(20), row(30)]).returning()).map((r) => r.id)
    t.same(await totals(), [3, 60], 'a three-row insert')
    await database.db.update(quarantine).set({ bytes: 25 }).where(eq(quarantine.id, ids[1]!))
    t.same(await totals(), [3, 65], 'a change of bytes')
    await database.db.update(quarantine).set({ releasedAt: 2, releasedAs: 'x' })
    t.same(await totals(), [3, 65], 'a release leaves them')
    await database.db.delete(quarantine).where(eq(quarantine.id, ids[0]!))
    t.same(await totals(), [2, 55], 'a delete')
    await database.db.delete(quarantine)
    t.same(await totals(), [0, 0], 'a delete of every row')
  })
}
