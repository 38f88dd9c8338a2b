import { statSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { randomUUID } from 'node:crypto'
import { openDatabase, migrate } from '../src/db/client.ts'
import * as store from '../src/outbox/store.ts'
import { appleShapedBodies } from '../bench/bodies.ts'

const bodies = await appleShapedBodies((process.env.CHAIN as any) ?? 'generated', 12_600)
import Database from 'better-sqlite3'
for (const ps of [1024, 2048, 4096]) for (const batch of [25]) {
  const dir = mkdtempSync(join(tmpdir(), 'walexp-'))
  const path = join(dir, 'x.db')
  const pre = new Database(path); pre.pragma(`page_size = ${ps}`); pre.exec('CREATE TABLE _x(a); DROP TABLE _x'); pre.close()
  const d = openDatabase(path)
  migrate(d)
  // no autocheckpoint: WAL size = frames appended
  const raw: any = (d.db as any).$client ?? (d.db as any).session?.client
  raw.pragma('wal_autocheckpoint = 0')
  raw.pragma('wal_checkpoint(TRUNCATE)')
  const N = Number(process.env.N ?? 2000)
  const t0 = performance.now()
  for (let i = 0; i < N; i += batch) {
    d.transaction(() => {
      for (let j = 0; j < batch; j++) {
        const id = randomUUID()
        store.enqueue(d.db, { id, dedupeKey: randomUUID(), receivedAt: Date.now(), source: 'webhook', version: 2, notificationType: 'DID_RENEW', verification: 'unverified',
          originalTransactionId: String(Math.floor(Math.random() * 1e15)), transactionId: String(Math.floor(Math.random() * 1e15)), appAccountToken: randomUUID(), productId: 'p', bundleId: 'b', environment: 'Production', signedDate: Date.now(), body: bodies.next() }, ['a'], Date.now())
      }
    })
  }
  const wal = statSync(path + '-wal').size
  raw.pragma('wal_checkpoint(TRUNCATE)')
  const used = (raw.pragma('page_count', { simple: true }) - raw.pragma('freelist_count', { simple: true })) * ps
  console.log(`page ${ps} (${raw.pragma('page_size', { simple: true })}) DB ${(used / N / 1000).toFixed(2)} KB/notification; batch ${batch}: WAL ${(wal / N / 1000).toFixed(1)} KB/notification (${(wal / N / (ps + 24)).toFixed(2)} frames), ${((performance.now() - t0) / N).toFixed(3)} ms each`)
  d.close()
}
