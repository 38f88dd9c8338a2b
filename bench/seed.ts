// Fills an outbox fast for the drain and scale benchmarks: the real schema and
// migrations (src/db/client.ts) and the real insert (src/outbox/store.ts
// enqueue), in transactions of 10,000 with synchronous=OFF, which only a
// seeding script may do.
import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { migrate, openDatabase } from '../src/db/client.ts'
import { enqueue } from '../src/outbox/store.ts'
import { bodyFactory } from './bodies.ts'

export interface SeedOptions {
  count: number
  target: string
  // Share of the rows already delivered; the rest is pending.
  deliveredShare: number
  // When the pending rows are due (a retry backlog scheduled later, or now).
  pendingDueAt: number
  sizes?: number[]
}

export function seedOutbox (path: string, o: SeedOptions): void {
  const database = openDatabase(path)
  migrate(database)
  database.db.run(sql`PRAGMA synchronous = OFF`)
  const next = bodyFactory(o.sizes)
  const now = Date.now()
  const before = database.db.get<{ id: number | null }>(sql`SELECT max(id) AS id FROM deliveries`)?.id ?? 0
  for (let done = 0; done < o.count;) {
    const batch = Math.min(10_000, o.count - done)
    database.transaction(() => {
      for (let i = 0; i < batch; i++) {
        const id = uuidv7()
        enqueue(database.db, {
          id, dedupeKey: id, notificationUuid: id, receivedAt: now, source: 'webhook', version: 2,
          notificationType: 'DID_RENEW', environment: 'Production', bundleId: 'com.example.app',
          originalTransactionId: String(2_000_000_000_000_000 + done + i), verification: 'unchecked', body: next()
        }, [o.target], now)
      }
    })
    done += batch
  }
  const every = o.deliveredShare >= 1 ? 1 : Math.round(1 / (1 - o.deliveredShare))
  database.db.run(sql`UPDATE deliveries SET status = 'delivered', attempts = 1, delivered_at = ${now}, next_attempt_at = ${now} WHERE id > ${before} AND id % ${every} != 0`)
  database.db.run(sql`UPDATE deliveries SET next_attempt_at = ${o.pendingDueAt} WHERE id > ${before} AND status = 'pending'`)
  database.close()
}
