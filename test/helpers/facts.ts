// Facts a relay test can wait on instead of a fixed time. A notification can
// only reach a target through a delivery row, committed before Apple's 200;
// every send is counted on that row (a claim, or the lease written with it)
// and leaves an attempt row when its outcome is recorded. So once no row is
// pending, every counted attempt is recorded and no request is on the wire,
// the rows say everything the relay sent: a test asserts exact counts there
// and at the target, and a duplicate sent at any time before shows up in
// them, where a fixed sleep only caught one that came within the sleep.
import { sql, type SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import pg from 'pg'
import type { Config } from '../../src/config.ts'
import { openDatabase } from '../../src/db/client.ts'
import type { TestApp } from './app.ts'

// A test's own reader (and planter) of rows, beside the storage and never
// through it, on whichever engine the app runs: the same drizzle `sql`
// template, run by better-sqlite3 or by a pg pool to the app's DATABASE_URL.
// Values come back as SQLite gives them, so one assertion fits both engines:
// PostgreSQL's bigint and numeric (count(*), sum(...), the millisecond
// columns) as numbers, its booleans as 1 and 0; bytea is a Buffer on both.
export interface Facts {
  all: <T = Record<string, unknown>>(query: SQL) => Promise<T[]>
  get: <T = Record<string, unknown>>(query: SQL) => Promise<T | undefined>
  run: (query: SQL) => Promise<void>
  close: () => Promise<void>
}

// Per query, not pg.types' global parsers: the app runs in the same process
// and must see its driver's values unchanged. (drizzle's own execute passes
// parsers of its own per query, so the query goes to the pool directly, as
// drizzle's dialect renders it.)
const INT8 = 20
const NUMERIC = 1700
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser
}
const asSqlite = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v]))

// Its own connection, so a test can still read after the app is closed.
export function openFacts (config: Config): Facts {
  if (config.databaseUrl === null) {
    const { db: sqlite, close } = openDatabase(config.databasePath)
    return {
      all: async <T>(query: SQL) => sqlite.all<T>(query),
      get: async <T>(query: SQL) => sqlite.get<T>(query),
      run: async (query) => { sqlite.run(query) },
      close: async () => { close() }
    }
  }
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 })
  // A connection the server drops (a test restarting its cluster) must not end the process.
  pool.on('error', () => {})
  const dialect = new PgDialect()
  const run = async (query: SQL): Promise<pg.QueryResult> => {
    const { sql: text, params } = dialect.sqlToQuery(query)
    return await pool.query({ text, values: params, types })
  }
  const all = async <T>(query: SQL): Promise<T[]> => (await run(query)).rows.map(asSqlite) as T[]
  let closed: Promise<void> | null = null
  return {
    all,
    get: async <T>(query: SQL) => (await all<T>(query))[0],
    run: async (query) => { await run(query) },
    close: () => (closed ??= pool.end())
  }
}

export interface Tally {
  deliveries: number
  delivered: number
  dead: number
  pending: number
  // Attempts counted on the delivery rows (one per send), and attempt rows recorded.
  attempts: number
  recorded: number
}

// What one target's (or, without a name, every target's) delivery rows amount to.
// (FILTER and a named subquery: the SQL both engines accept.)
export async function tally (s: TestApp, target?: string): Promise<Tally> {
  const row = await s.facts.get<Tally>(sql`
    SELECT count(*) AS deliveries,
           count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
           count(*) FILTER (WHERE d.status = 'dead') AS dead,
           count(*) FILTER (WHERE d.status = 'pending') AS pending,
           coalesce(sum(d.attempts), 0) AS attempts,
           coalesce(sum((SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id)), 0) AS recorded
      FROM deliveries d WHERE ${target === undefined ? sql`TRUE` : sql`d.target = ${target}`}`)
  return row!
}

// A FORWARD_TARGETS entry's name: its host, as stored in the delivery rows.
export const hostOf = (url: string): string => new URL(url).host

// Rows the relay still has work or bookkeeping on: pending (due, leased or
// waiting for a retry), or with a send counted whose outcome is not recorded
// yet. A process killed mid-attempt leaves such a count for good: this is for
// in-process apps, not for crash tests.
async function open (s: TestApp): Promise<Array<{ id: number; target: string; status: string; attempts: number; recorded: number }>> {
  return await s.facts.all(sql`
    SELECT id, target, status, attempts, recorded FROM (
      SELECT d.id, d.target, d.status, d.attempts, (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id) AS recorded FROM deliveries d) AS rows
     WHERE status = 'pending' OR attempts > recorded`)
}

// Waits until every delivery row is delivered or dead and every send counted
// on a row has its attempt recorded. A request on the wire is such a send (its
// row counted it when it was claimed or leased), so none is left either.
export async function settled (s: TestApp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = await open(s)
    if (left.length === 0) return
    if (Date.now() > deadline) throw new Error(`not settled after ${timeoutMs} ms: open rows ${JSON.stringify(left.slice(0, 10))}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
