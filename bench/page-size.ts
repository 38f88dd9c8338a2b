// `node --import tsx bench/page-size.ts`: what SQLite's page size does to the
// WAL bytes and database bytes of each notification (src/db/client.ts
// PAGE_SIZE). The storage's own enqueue, in commits of 25 as the writer makes
// under load, with Apple-shaped bodies whose notificationUUID, transaction
// ids and account token are random as Apple's are, so that the random
// indexes grow as a real outbox's do. Autocheckpoint is off, so the WAL's
// size at the end is every frame appended: what a WAL shipper copies.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import { migrate, openDatabase } from '../src/db/client.ts'
import * as store from '../src/outbox/store.ts'
import { appleShapedBodies } from './bodies.ts'

const N = Number(process.env.N ?? 20_000)
const BATCH = 25
const bodies = await appleShapedBodies(process.env.BENCH_CHAIN === 'apple' ? 'apple' : 'generated', 12_600)
const randomId = (): string => String(2e15 + Math.floor(Math.random() * 1e15))

for (const pageSize of [1024, 2048, 4096]) {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-page-size-'))
  const path = join(dir, 'p.db')
  // A file made with this page size before storehook opens it (it would make it with PAGE_SIZE).
  const pre = new Database(path)
  pre.pragma(`page_size = ${pageSize}`)
  pre.exec('CREATE TABLE made (x); DROP TABLE made')
  pre.close()
  const database = openDatabase(path)
  migrate(database)
  const raw = new Database(path)
  raw.pragma('wal_checkpoint(TRUNCATE)')
  // Autocheckpoint is the writing connection's own setting.
  ;(database.db as unknown as { $client: Database.Database }).$client.pragma('wal_autocheckpoint = 0')
  const started = performance.now()
  for (let i = 0; i < N; i += BATCH) {
    database.transaction(() => {
      for (let j = 0; j < BATCH; j++) {
        store.enqueue(database.db, {
          id: randomUUID(), dedupeKey: randomUUID(), receivedAt: Date.now(), source: 'webhook', version: 2, notificationType: 'DID_RENEW', verification: 'unverified',
          originalTransactionId: randomId(), transactionId: randomId(), appAccountToken: randomUUID(), productId: 'com.example.pro', bundleId: 'com.example', environment: 'Production',
          signedDate: Date.now(), body: bodies.next()
        }, ['target'], Date.now())
      }
    })
  }
  const ms = (performance.now() - started) / N
  const walBytes = statSync(`${path}-wal`).size
  raw.pragma('wal_checkpoint(TRUNCATE)')
  const used = ((raw.pragma('page_count', { simple: true }) as number) - (raw.pragma('freelist_count', { simple: true }) as number)) * pageSize
  raw.close()
  database.close()
  rmSync(dir, { recursive: true, force: true })
  console.log(`page size ${pageSize}: WAL ${(walBytes / N / 1000).toFixed(1)} KB per notification (${(walBytes / N / (pageSize + 24)).toFixed(1)} frames), database ${(used / N / 1000).toFixed(2)} KB per notification, ${ms.toFixed(3)} ms of enqueue each`)
}
