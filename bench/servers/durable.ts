// The durable floor: the least any relay must do to meet issue 2 with
// storehook's schema, and nothing more. Receive, decode the fields the
// indexes need, one group commit per turn on a writer thread (synchronous=FULL,
// the tables and indexes of drizzle/), answer 200, POST the bytes to the
// target, record the attempt in the next commit. No logs, no metrics, no
// leases or claims, no error handling beyond a 400, and with FLOOR_VERIFY=1
// the verifying floor's single cached-key ES256 check before the write.
// bench/floors.ts takes parts away to price them: FLOOR_INDEXES=dedupe keeps
// only the dedupe index of notifications, FLOOR_FORWARD=0 sends nothing.
// Whatever this reaches on a machine, no implementation of the same contract
// reaches much more there: it is what the ingest goals are measured against
// to tell storehook's own overhead from the machine's limit.
import { randomUUID, verify, X509Certificate, type KeyObject } from 'node:crypto'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { migrationsFolder } from '../../src/db/client.ts'

// [notification id, delivery id, attempt started, duration ms, status]
type Outcome = [string, number, number, number, number]
// [request key, the notifications row's values in column order]
type NewRow = [number, unknown[]]

const COLUMNS = 'id, dedupe_key, received_at, source, version, notification_uuid, notification_type, subtype, environment, bundle_id, app_apple_id, signed_date, original_transaction_id, transaction_id, product_id, app_account_token, verification, body'

function writer (): void {
  const db = new Database(workerData.path as string)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  // storehook's own migrations, applied the way it applies them.
  migrate(drizzle(db), { migrationsFolder: migrationsFolder() })
  if (workerData.indexes === 'dedupe') {
    const lookups = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'notifications' AND sql IS NOT NULL AND name != 'notifications_dedupe_key'").all() as Array<{ name: string }>
    for (const { name } of lookups) db.exec(`DROP INDEX ${name}`)
  }
  const insertNotification = db.prepare(`INSERT INTO notifications (${COLUMNS}) VALUES (${COLUMNS.split(',').map(() => '?').join(',')}) ON CONFLICT(dedupe_key) DO NOTHING`)
  const insertDelivery = db.prepare("INSERT INTO deliveries (notification_id, target, status, attempts, fence, lease_until, next_attempt_at, retry_since, created_at, updated_at) VALUES (?, 't', 'pending', 1, 1, ?, ?, ?, ?, ?)")
  const settle = db.prepare("UPDATE deliveries SET status = 'delivered', delivered_at = ?, lease_until = NULL, updated_at = ?, last_status_code = ? WHERE id = ?")
  const insertAttempt = db.prepare('INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code) VALUES (?, 1, ?, ?, ?)')
  let rows: NewRow[] = []
  let outcomes: Outcome[] = []
  let scheduled = false
  const commit = (): void => {
    scheduled = false
    const batch = rows
    const settled = outcomes
    rows = []
    outcomes = []
    const ids = db.transaction(() => {
      const now = Date.now()
      for (const [, deliveryId, startedAt, durationMs, status] of settled) {
        insertAttempt.run(deliveryId, startedAt, durationMs, status)
        settle.run(now, now, status, deliveryId)
      }
      return batch.map(([key, values]): [number, number] => {
        values[17] = Buffer.from(values[17] as Uint8Array)
        if (insertNotification.run(...values).changes === 0) return [key, -1]
        return [key, Number(insertDelivery.run(values[0], now + 15_000, now + 15_000, now, now, now).lastInsertRowid)]
      })
    })()
    if (ids.length > 0) parentPort!.postMessage(ids)
  }
  parentPort!.on('message', ([newRows, newOutcomes]: [NewRow[], Outcome[]]) => {
    rows.push(...newRows)
    outcomes.push(...newOutcomes)
    if (!scheduled) {
      scheduled = true
      setImmediate(commit)
    }
  })
}

async function server (): Promise<void> {
  const target = new URL(process.env.TARGET_URL!)
  const checkSignature = process.env.FLOOR_VERIFY === '1'
  // A worker does not inherit tsx's loader on Node 20: it registers it, then runs this file.
  const thread = new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}) })`,
    { eval: true, workerData: { path: process.env.DATABASE_PATH, indexes: process.env.FLOOR_INDEXES ?? 'all' } })
  const pool = new Pool(target.origin, { connections: 4 })
  const waiting = new Map<number, (deliveryId: number) => void>()
  let nextKey = 1
  let rows: NewRow[] = []
  let outcomes: Outcome[] = []
  let scheduled = false
  const send = (): void => {
    scheduled = false
    thread.postMessage([rows, outcomes])
    rows = []
    outcomes = []
  }
  const soon = (): void => {
    if (!scheduled) {
      scheduled = true
      setImmediate(send)
    }
  }
  thread.on('message', (ids: Array<[number, number]>) => {
    for (const [key, deliveryId] of ids) {
      waiting.get(key)!(deliveryId)
      waiting.delete(key)
    }
  })
  const forward = (notificationId: string, deliveryId: number, body: Buffer): void => {
    const startedAt = Date.now()
    pool.request({ path: target.pathname + target.search, method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (res) => {
      await res.body.dump()
      outcomes.push([notificationId, deliveryId, startedAt, Date.now() - startedAt, res.statusCode])
      soon()
    }, () => {})
  }
  const keys = new Map<string, KeyObject>()
  const decode = (part: string): any => JSON.parse(Buffer.from(part, 'base64url').toString())

  const app = Fastify({ bodyLimit: 1_048_576 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })
  app.post('/apple/notifications', async (request, reply) => {
    const raw = request.body as Buffer
    let payload: any
    let tx: any
    try {
      const [header, body, signature] = (JSON.parse(raw.toString()).signedPayload as string).split('.') as [string, string, string]
      if (checkSignature) {
        let key = keys.get(header)
        if (key === undefined) {
          key = new X509Certificate(Buffer.from((decode(header) as { x5c: string[] }).x5c[0]!, 'base64')).publicKey
          keys.set(header, key)
        }
        if (!verify('sha256', Buffer.from(`${header}.${body}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))) return reply.code(403).send({ error: 'bad signature' })
      }
      payload = decode(body)
      const signedTx = payload.data?.signedTransactionInfo as string | undefined
      tx = signedTx === undefined ? {} : decode(signedTx.split('.')[1]!)
    } catch {
      return reply.code(400).send({ error: 'not a notification' })
    }
    const data = payload.data ?? {}
    const id = randomUUID()
    const key = nextKey++
    const deliveryId = await new Promise<number>((resolve) => {
      waiting.set(key, resolve)
      rows.push([key, [id, payload.notificationUUID, Date.now(), 'webhook', 2, payload.notificationUUID, payload.notificationType, payload.subtype ?? null,
        data.environment ?? null, data.bundleId ?? null, data.appAppleId === undefined ? null : String(data.appAppleId), payload.signedDate ?? null,
        tx.originalTransactionId ?? null, tx.transactionId ?? null, tx.productId ?? null, tx.appAccountToken ?? null, checkSignature ? 'verified' : 'unchecked', raw]])
      soon()
    })
    if (deliveryId > 0 && process.env.FLOOR_FORWARD !== '0') forward(id, deliveryId, raw)
    return { ok: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
  process.on('SIGTERM', () => {
    void app.close().then(async () => {
      await thread.terminate()
      process.exit(0)
    })
  })
}

if (isMainThread) await server()
else writer()
