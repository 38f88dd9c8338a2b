// `node --import tsx bench/retention.ts`: does the database file stop growing
// once retention prunes as fast as notifications arrive? A simulated clock
// runs the real store functions (enqueue, claim, complete, prune in batches of
// PRUNE_BATCH) for DAYS days at PER_DAY notifications a day, each 4-12 KB with
// two targets and a recorded attempt, and prints the file size every few days.
// SQLite reuses the pages that pruning frees (its freelist), so no VACUUM is
// needed for the size to level off: this shows that it does.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { v7 as uuidv7 } from 'uuid'
import { migrate, openDatabase } from '../src/db/client.ts'
import * as store from '../src/outbox/store.ts'
import { PRUNE_BATCH } from '../src/outbox/retention.ts'
import { bodyFactory } from './bodies.ts'

const DAY = 86_400_000

export interface RetentionRow { day: number; stored: number; fileMb: number; walMb: number }

export function runRetentionBench (opts: { days: number; perDay: number; retentionDays: number; every: number }): RetentionRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-retention-'))
  const path = join(dir, 'r.db')
  const database = openDatabase(path)
  migrate(database)
  const { db } = database
  const next = bodyFactory()
  const rows: RetentionRow[] = []
  let stored = 0
  try {
    const start = Date.UTC(2026, 0, 1)
    for (let day = 1; day <= opts.days; day++) {
      // A day's traffic in commits of 50, as the group commit would batch it.
      for (let i = 0; i < opts.perDay; i += 50) {
        database.transaction(() => {
          for (let j = i; j < Math.min(i + 50, opts.perDay); j++) {
            const now = start + (day - 1) * DAY + Math.floor(j * DAY / opts.perDay)
            const id = uuidv7({ msecs: now })
            store.enqueue(db, { id, dedupeKey: id, receivedAt: now, source: 'webhook', version: 2, notificationUuid: id, notificationType: 'DID_RENEW', verification: 'verified', body: next() }, ['a', 'b'], now)
            for (const target of ['a', 'b']) {
              for (const c of store.claimDue(db, target, 10, now, now + 60_000)) {
                store.complete(db, { deliveryId: c.deliveryId, fence: c.fence, attempt: c.attempt, startedAt: now, durationMs: 12, statusCode: 200, error: null, responseExcerpt: '{"ok":true}' }, now)
              }
            }
          }
        })
        stored += Math.min(50, opts.perDay - i)
      }
      // Once a day, as the server's timer would over the day.
      const cutoff = start + day * DAY - opts.retentionDays * DAY
      let pruned: number
      do {
        pruned = database.transaction(() => store.pruneDelivered(db, cutoff, PRUNE_BATCH))
        stored -= pruned
      } while (pruned === PRUNE_BATCH)
      if (day % opts.every === 0 || day === opts.days) {
        const wal = statSync(path + '-wal', { throwIfNoEntry: false })?.size ?? 0
        rows.push({ day, stored, fileMb: statSync(path).size / 2 ** 20, walMb: wal / 2 ** 20 })
      }
    }
  } finally {
    database.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

export function retentionTable (rows: RetentionRow[]): string[] {
  return ['| day | notifications kept | database file MB | WAL MB |', '|---|---|---|---|',
    ...rows.map((r) => `| ${r.day} | ${r.stored} | ${r.fileMb.toFixed(1)} | ${r.walMb.toFixed(1)} |`)]
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = { days: Number(process.env.DAYS ?? 90), perDay: Number(process.env.PER_DAY ?? 1000), retentionDays: Number(process.env.RETENTION_DAYS ?? 30), every: 10 }
  console.log(`Retention at a steady ${opts.perDay} notifications/day, RETENTION_DAYS=${opts.retentionDays}, two targets, every one delivered:\n`)
  console.log(retentionTable(runRetentionBench(opts)).join('\n'))
}
