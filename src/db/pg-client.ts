// The one module that touches the PostgreSQL driver (issue 16), as client.ts
// is for SQLite: it opens a pool from a URL, reports whether a commit waits
// for its WAL flush, and applies the migrations in drizzle/pg/ under a lock.
// node-postgres (`pg`), chosen by measurement (bench/pg-clients.ts): as
// drizzle calls it, it commits single-row INSERTs at 32 at once and 25-row
// transactions faster than postgres.js, and it runs under Deno too.
import { join } from 'node:path'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { migrate as drizzleMigrate } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import { migrationsFolder } from './client.ts'
import * as schema from './schema-pg.ts'

export type PgDb = NodePgDatabase<typeof schema>

export interface PgDatabase {
  db: PgDb
  pool: pg.Pool
  url: string
  // Ends every connection. Safe to call twice.
  close: () => Promise<void>
}

// drizzle/pg/ beside the SQLite migrations: in a checkout the folder itself,
// in the single binary the copy it writes out from its assets (client.ts).
export function pgMigrationsFolder (): string {
  return join(migrationsFolder(), 'pg')
}

// Decided with the rest of the configuration (config.ts), which the CLI loads without this client; re-exported for the engine's callers.
export { isPostgresUrl, maskedUrl } from '../config.ts'

export interface PgOptions {
  max?: number
  // How long an operation may wait for a connection, and a statement may run,
  // before it fails: a database that went away (restart, failover, a network
  // cut that leaves sockets open) rejects the op instead of leaving it
  // pending forever, so ingest answers 503 and workers retry on their poll.
  connectTimeoutMs?: number
  statementTimeoutMs?: number
}

export function openPg (url: string, options: PgOptions = {}): PgDatabase {
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // Enforced by the server (statement_timeout, and a transaction left idle
    // by a client that stalled) and by the client (query_timeout, for a
    // server that no longer answers at all), a little later.
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 5_000,
    // Half-open TCP connections (a NAT or failover dropping state) are found by the kernel.
    keepAlive: true
  })
  // An idle connection the server drops (restart, failover) must not crash
  // the process: the pool discards it and opens another on the next query.
  pool.on('error', () => {})
  // The pool listens for errors only on idle connections: one that breaks
  // while checked out (between two statements of a transaction) would emit
  // 'error' with no listener, which throws and ends the process. The
  // statement waiting on it rejects all the same, and the pool discards a
  // broken connection when it is given back.
  pool.on('connect', (client) => { client.on('error', () => {}) })
  let closed: Promise<void> | null = null
  return {
    db: drizzle(pool, { schema }),
    pool,
    url,
    close: () => (closed ??= pool.end())
  }
}

export interface SynchronousCommit {
  // What the server reports for this connection's role and database.
  setting: string
  // Whether COMMIT returns only after the primary's WAL is flushed to disk:
  // every value but `off` (local, remote_write, on and remote_apply differ
  // only in how long they wait for standbys). With `off`, a 200 could be
  // lost to a crash of the database server.
  flushedBeforeCommit: boolean
}

// SHOW synchronous_commit on a connection of the pool: the setting can
// differ per role and per database, so it is read as the app connects, and
// the caller decides whether to refuse or warn.
export async function synchronousCommit (database: Pick<PgDatabase, 'pool'>): Promise<SynchronousCommit> {
  const { rows } = await database.pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit')
  const setting = rows[0]!.synchronous_commit
  return { setting, flushedBeforeCommit: setting !== 'off' }
}

// Held for the whole migration: drizzle's migrator creates its schema and
// table with IF NOT EXISTS, which two sessions running it at once can still
// trip over, and each would then apply the same pending migrations. The key
// is one fixed number, "storehook" in ASCII truncated to 8 bytes, so it is
// the same for every instance and unlikely to collide with another app's.
const MIGRATION_LOCK = BigInt('0x' + Buffer.from('storehoo').toString('hex')).toString()

async function appliedCount (client: pg.Client): Promise<number> {
  const { rows: [found] } = await client.query<{ table: string | null }>("SELECT to_regclass('drizzle.__drizzle_migrations') AS table")
  if (found?.table == null) return 0
  const { rows: [row] } = await client.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
  return Number(row?.n ?? 0)
}

// A session-level advisory lock held on a connection of its own until
// `release`, or null when another session holds it. The key is text made into
// a number as MIGRATION_LOCK's is (8 ASCII bytes).
export async function holdLock (url: string, name: string): Promise<{ release: () => Promise<void> } | null> {
  const key = BigInt('0x' + Buffer.from(name.padEnd(8).slice(0, 8)).toString('hex')).toString()
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  client.on('error', () => {})
  try {
    const { rows } = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1) AS held', [key])
    if (rows[0]!.held) return { release: () => client.end() }
  } catch (err) {
    await client.end()
    throw err
  }
  await client.end()
  return null
}

// Brings the database's schema up to date, and returns how many migrations
// it applied (0 when another instance did, or nothing was pending). Uses one
// connection of its own: a session-level advisory lock belongs to a
// connection, and the migrator must run on the one that holds it.
export async function migratePg (url: string): Promise<number> {
  // A database that cannot be reached fails the start in seconds, not at the OS's TCP timeout.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      const before = await appliedCount(client)
      await drizzleMigrate(drizzle(client), { migrationsFolder: pgMigrationsFolder() })
      return (await appliedCount(client)) - before
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    await client.end()
  }
}
