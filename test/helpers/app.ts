// Starts the real app in-process, registered exactly as production does, on
// a fresh SQLite file in a temp folder, listening on 127.0.0.1.
// STOREHOOK_TEST_ENGINE=postgres starts it on a fresh database of a
// throwaway PostgreSQL cluster instead (one cluster per test process), to
// run the relay tests against the PostgreSQL engine. `db` is then still a
// SQLite connection, to an empty file: a test that reads facts through it
// rather than through the app fails, and says which tests do.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { loadConfig, type Config } from '../../src/config.ts'
import { openDatabase, type Db } from '../../src/db/client.ts'
import { buildApp } from '../../src/server.ts'
import { freshDatabase, startPostgres, type Cluster } from './postgres.ts'

export interface TestApp {
  app: FastifyInstance
  // The test's own connection to the app's database file: the facts a test
  // checks, read (or planted) beside the storage, never through it.
  db: Db
  url: string
  config: Config
  dir: string
  logs: string[]
  post: (body: Buffer | string, headers?: Record<string, string>) => Promise<{ status: number; json: any }>
  close: () => Promise<void>
}

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
async function engineEnv (path: string): Promise<Record<string, string>> {
  if (process.env.STOREHOOK_TEST_ENGINE !== 'postgres') return {}
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
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    try {
      await app.close()
    } finally {
      database.close()
    }
  }
  t.teardown(close)
  return {
    app,
    db: database.db,
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
