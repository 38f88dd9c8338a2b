// Starts the real app in-process, registered exactly as production does, on
// a fresh SQLite file in a temp folder, listening on 127.0.0.1.
// STOREHOOK_TEST_ENGINE=postgres starts it on a fresh database of a
// throwaway PostgreSQL cluster instead (one cluster per test process), to
// run the relay tests against the PostgreSQL engine. `facts` reads and plants
// rows on whichever engine the app runs; `db` is still a SQLite connection,
// to an empty file on PostgreSQL, kept for the tests that are SQLite-only by
// nature (they skip on PostgreSQL with `sqliteOnly`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { loadConfig, type Config } from '../../src/config.ts'
import { openDatabase, type Db } from '../../src/db/client.ts'
import { buildApp } from '../../src/server.ts'
import './writer-bundle.ts'
import { openFacts, type Facts } from './facts.ts'
import { freshDatabase, startPostgres, type Cluster } from './postgres.ts'

export interface TestApp {
  app: FastifyInstance
  // The test's own connection to the app's database file: the facts a test
  // checks, read (or planted) beside the storage, never through it.
  db: Db
  // The same, engine-neutral: the database the app runs on, SQLite or PostgreSQL.
  facts: Facts
  // What a CLI run needs to open the same database: DATABASE_PATH, and DATABASE_URL on PostgreSQL.
  env: Record<string, string>
  url: string
  config: Config
  dir: string
  logs: string[]
  post: (body: Buffer | string, headers?: Record<string, string>) => Promise<{ status: number; json: any }>
  close: () => Promise<void>
}

export const onPostgres = (): boolean => process.env.STOREHOOK_TEST_ENGINE === 'postgres'

// For a test that checks the SQLite file itself: skipped on PostgreSQL, saying why in one line.
export const sqliteOnly = (why: string): { skip: string | false } => ({ skip: onPostgres() ? `SQLite only: ${why}` : false })

export function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// Writes a STOREHOOK_CONFIG file into a fresh temp folder; returns its path.
export function configFile (t: { teardown: (fn: () => void) => void }, content: unknown): string {
  const path = join(tempDir(t), 'storehook.json')
  writeFileSync(path, JSON.stringify(content))
  return path
}

let cluster: Promise<Cluster> | null = null
// One database per DATABASE_PATH, so a test that restarts the app on the
// same file restarts it on the same database.
const databases = new Map<string, string>()
// What a test that spawns its own server adds to its env to run on the engine
// under test: DATABASE_URL of the database for that DATABASE_PATH, or nothing.
export async function engineEnv (path: string): Promise<Record<string, string>> {
  if (!onPostgres()) return {}
  // Stopped at exit by the helper itself.
  cluster ??= startPostgres()
  let url = databases.get(path)
  if (url === undefined) {
    url = await freshDatabase(await cluster)
    databases.set(path, url)
  }
  return { DATABASE_URL: url }
}

export async function startApp (
  t: { teardown: (fn: () => void | Promise<void>) => void },
  env: Record<string, string> = {}
): Promise<TestApp> {
  const dir = tempDir(t)
  const config = loadConfig({
    DATABASE_PATH: join(dir, 'storehook.db'),
    VERIFY_SIGNATURES: 'off',
    RETRY_MIN_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '200',
    POLL_INTERVAL_MS: '50',
    LOG_LEVEL: 'info',
    ...await engineEnv(env.DATABASE_PATH ?? join(dir, 'storehook.db')),
    ...env
  })
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { logs.push(String(chunk)); cb() } })
  const app = await buildApp(config, pino({ level: config.logLevel }, stream))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const database = openDatabase(config.databasePath)
  const facts = openFacts(config)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    try {
      await app.close()
    } finally {
      database.close()
      await facts.close()
    }
  }
  t.teardown(close)
  return {
    app,
    db: database.db,
    facts,
    env: { DATABASE_PATH: config.databasePath, ...config.databaseUrl === null ? {} : { DATABASE_URL: config.databaseUrl } },
    url,
    config,
    dir,
    logs,
    async post (body, headers = { 'content-type': 'application/json' }) {
      const res = await fetch(`${url}/apple/notifications`, { method: 'POST', body, headers })
      const text = await res.text()
      let json: unknown = null
      try { json = JSON.parse(text) } catch {}
      return { status: res.status, json }
    },
    close
  }
}

export async function until (check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
