// The one module that touches the SQLite driver: it opens the file, sets the
// pragmas that make a commit durable, and applies the migrations in drizzle/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getEnvironmentData, setEnvironmentData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { ASSET_MIGRATIONS, ASSET_SQLITE_ADDON, BINARY, binaryAsset } from '../binary.ts'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate as drizzleMigrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from './schema.ts'
import { ConfigError } from '../config.ts'

export type Db = BetterSQLite3Database<typeof schema>

export interface Database_ {
  db: Db
  path: string
  // Runs fn in one transaction; fn must be synchronous (better-sqlite3 commits when it returns).
  // 'relaxed' commits skip the fsync (see Durability).
  transaction: <T>(fn: () => T, durability?: Durability) => T
  // Checkpoints, then closes. Safe to call twice.
  close: () => void
  // For tests and fault drills: cap the file at its current size, as a full disk would.
  setMaxPageCount: (pages: number | null) => number
  fileSizeBytes: () => number
  // Migrations in drizzle/ not yet applied to this file (0 when up to date).
  pendingMigrations: () => number
}

// 'durable': the commit is fsync'd before it returns (synchronous=FULL), so
// it survives a power cut; every notification answered 200 is written so.
// 'relaxed': written to the WAL without the fsync (synchronous=NORMAL): it
// survives the process being killed, and the next durable commit fsyncs it
// too, but a power cut in between can lose it. Only bookkeeping whose loss
// costs at most a repeated delivery may be relaxed (leases, attempt
// outcomes): that keeps the fsync off the delivery path, where it was the
// ceiling on how fast a backlog drains.
export type Durability = 'durable' | 'relaxed'

export interface OpenOptions {
  // The server waits briefly: a long wait would stall its event loop. The CLI can wait longer.
  busyTimeoutMs?: number
  readonly?: boolean
  // SQLite's page cache for this connection (KiB); the writer's holds a commit batch.
  cacheKb?: number
}

const SOURCE_MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle')

// The single binary carries the addon and the migrations as assets. They are
// written once per process into a private directory (mkdtemp: mode 0700, so
// no other user can swap the library before it is loaded), shared with the
// writer thread through the worker environment data, and removed at exit. A
// kill -9 leaves that directory behind in the temp folder (about 2 MB).
const BINARY_FILES = 'storehook:binary-files'
let binaryFiles: string | null = null
function binaryDir (): string {
  if (binaryFiles !== null) return binaryFiles
  const inherited = getEnvironmentData(BINARY_FILES)
  if (typeof inherited === 'string') return (binaryFiles = inherited)
  const dir = mkdtempSync(join(tmpdir(), 'storehook-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, ASSET_SQLITE_ADDON), binaryAsset(ASSET_SQLITE_ADDON), { mode: 0o500 })
  const migrations = JSON.parse(binaryAsset(ASSET_MIGRATIONS).toString('utf8')) as Record<string, string>
  for (const [name, text] of Object.entries(migrations)) {
    mkdirSync(dirname(join(dir, 'drizzle', name)), { recursive: true })
    writeFileSync(join(dir, 'drizzle', name), text)
  }
  setEnvironmentData(BINARY_FILES, dir)
  return (binaryFiles = dir)
}

export function migrationsFolder (): string {
  return BINARY === null ? SOURCE_MIGRATIONS : join(binaryDir(), 'drizzle')
}

let binaryAddon: object | null = null
function nativeBinding (): object {
  if (binaryAddon !== null) return binaryAddon
  // Loaded by hand: inside a single executable, require() reaches only Node's built-in modules.
  const addon = { exports: {} }
  process.dlopen(addon, join(binaryDir(), ASSET_SQLITE_ADDON))
  return (binaryAddon = addon.exports)
}

// better-sqlite3 is a NAN addon, which Deno cannot load; libsql has the same
// synchronous API, loads in both runtimes, and drizzle's better-sqlite3 driver
// runs on it unchanged. It is required lazily so that Node and the binary
// never load it.
const IN_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
function driver (): typeof Database {
  return IN_DENO ? createRequire(import.meta.url)('libsql') as typeof Database : Database
}

// The file cannot be opened (its folder cannot be created, a read-only file
// system, /proc, a directory): one line naming DATABASE_PATH, for `serve` and
// every command, instead of a driver's stack trace.
function openFile (path: string, options: OpenOptions): Database.Database {
  const Driver = driver()
  // The addon object is accepted at run time (better-sqlite3 >= 8); its types name only a path.
  const binding = BINARY === null ? {} : { nativeBinding: nativeBinding() as unknown as string }
  let sqlite: Database.Database | null = null
  try {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
    sqlite = new Driver(path, { readonly: options.readonly ?? false, ...binding })
    sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2000}`)
    if (options.readonly !== true) {
      // Only a new file takes it (and only before WAL mode): an existing one
      // keeps the page size it was made with. See PAGE_SIZE.
      sqlite.pragma(`page_size = ${PAGE_SIZE}`)
      // SQLite opens a file it may not write read-only without a word; the
      // switch to WAL is the first write, and says so.
      // better-sqlite3 answers the value; libsql (under Deno) may answer the row.
      const answer: unknown = sqlite.pragma('journal_mode = WAL', { simple: true })
      const mode = typeof answer === 'object' && answer !== null ? Object.values(answer)[0] : answer
      if (mode !== 'wal' && path !== ':memory:') throw new Error(`it stays in journal mode "${String(mode)}", not WAL: is the file or its file system read-only?`)
    }
    return sqlite
  } catch (err) {
    sqlite?.close()
    const e = err as Error & { code?: unknown }
    const reason = typeof e.code === 'string' && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message
    throw new ConfigError('DATABASE_PATH', `cannot open ${path}: ${reason}`)
  }
}

// New databases use 1 KB pages, not SQLite's default 4 KB. A commit writes
// every page it touched to the WAL whole, and most pages a notification
// touches are index leaves where it adds one entry of about 50 bytes: its
// notificationUUID, transaction and original transaction ids and account
// token are random, so each lands on a leaf of its own once the outbox is
// large. Stored compressed, a body is 1-3 KB, which 4 KB pages also fit
// badly (one row per page, the rest empty). Measured (bench/page-size.ts: 20,000
// Apple-shaped notifications with random ids, 25 to a commit): 33.4 KB of
// WAL and 4.7 KB of database per notification with 4 KB pages, 15.3 KB and
// 3.8 KB with 1 KB pages, for about 10% more writer CPU.
export const PAGE_SIZE = 1024
// Checkpoint when the WAL holds about 16 MB, whatever page size the file
// has. A checkpoint writes each page once, however often the WAL holds it
// (an index's hot pages are in almost every commit), so a longer interval
// writes less to the disk: measured (bench/footprint.ts, the checkpoint of
// the last frames counted), 13.4-14.0 KB per notification against
// 15.4-16.0 KB with 4 MB (SQLite's default of 1,000 pages of 4 KB); 64 MB
// gained nothing more. The cost: a WAL file of about 16 MB at rest.
const WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024

export function openDatabase (path: string, options: OpenOptions = {}): Database_ {
  const sqlite = openFile(path, options)
  sqlite.pragma(`wal_autocheckpoint = ${Math.ceil(WAL_CHECKPOINT_BYTES / (sqlite.pragma('page_size', { simple: true }) as number))}`)
  // FULL: the WAL is fsync'd at every commit, so a 200 survives a power cut.
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  // Statement journals stay in memory instead of a temp file per statement,
  // and a batch of several hundred notifications (about 12 KB each with its
  // index entries) fits in the page cache, so SQLite rarely spills half a
  // transaction to the WAL before its commit. A bigger cache bought no
  // measurable speed (the indexes of a large outbox outgrow any cache; the
  // OS page cache serves the misses) and cost 38 MB of resident memory.
  sqlite.pragma('temp_store = MEMORY')
  sqlite.pragma(`cache_size = -${options.cacheKb ?? 8192}`)
  const defaultMaxPages = sqlite.pragma('max_page_count', { simple: true }) as number
  const db = drizzle(sqlite, { schema })
  let closed = false
  let synchronous: Durability = 'durable'
  return {
    db,
    path,
    transaction (fn, durability = 'durable') {
      if (sqlite.inTransaction) throw new Error('transaction() does not nest')
      // The level can change only between transactions; switch only when it differs.
      if (durability !== synchronous && options.readonly !== true) {
        sqlite.pragma(durability === 'durable' ? 'synchronous = FULL' : 'synchronous = NORMAL')
        synchronous = durability
      }
      try {
        // IMMEDIATE takes the write lock up front: a deferred transaction that
        // upgrades later can fail with SQLITE_BUSY without waiting.
        return sqlite.transaction(fn).immediate()
      } finally {
        // A failed COMMIT (disk full, I/O error) can leave the transaction
        // open; roll it back so the next batch starts clean.
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK')
      }
    },
    close () {
      if (closed) return
      closed = true
      try {
        if (options.readonly !== true) sqlite.pragma('wal_checkpoint(TRUNCATE)')
      } finally {
        sqlite.close()
      }
    },
    setMaxPageCount (pages) {
      return sqlite.pragma(`max_page_count = ${pages ?? defaultMaxPages}`, { simple: true }) as number
    },
    pendingMigrations () {
      const exists = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get()
      const applied = exists === undefined ? 0 : (sqlite.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number }).n
      return Math.max(0, migrationCount() - applied)
    },
    fileSizeBytes () {
      const pageSize = sqlite.pragma('page_size', { simple: true }) as number
      const pageCount = sqlite.pragma('page_count', { simple: true }) as number
      return pageSize * pageCount
    }
  }
}

// Returns how many migrations it applied.
export function migrate (database: Database_): number {
  const pending = database.pendingMigrations()
  drizzleMigrate(database.db, { migrationsFolder: migrationsFolder() })
  return pending
}

// The file opened and its schema brought up to date, as the server and every
// command need it; closed again if a migration fails.
export function openMigrated (path: string, options: OpenOptions = {}): { database: Database_, applied: number } {
  const database = openDatabase(path, options)
  try {
    return { database, applied: migrate(database) }
  } catch (err) {
    database.close()
    throw err
  }
}

let journalCount: number | null = null
function migrationCount (): number {
  if (journalCount === null) {
    const journal = JSON.parse(readFileSync(resolve(migrationsFolder(), 'meta/_journal.json'), 'utf8')) as { entries: unknown[] }
    journalCount = journal.entries.length
  }
  return journalCount
}

// Statements built once per database and reused: drizzle builds and prepares
// a statement on every call unless told not to, which on the hot path cost
// more than SQLite itself.
export function preparedFor<T> (prepare: (db: Db) => T): (db: Db) => T {
  const cache = new WeakMap<Db, T>()
  return (db) => {
    let s = cache.get(db)
    if (s === undefined) {
      s = prepare(db)
      cache.set(db, s)
    }
    return s
  }
}
