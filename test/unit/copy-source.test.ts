// The SQLite side of `storehook copy` (src/outbox/copy-source.ts): batches in
// id order with no gap, cut by their bodies' bytes, from one snapshot.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { dedupeKeyOf } from '../../src/outbox/engine.ts'
import { openCopySource } from '../../src/outbox/copy-source.ts'
import { openStorage } from '../../src/outbox/open-storage.ts'
import { tempDir } from '../helpers/app.ts'

t.test('batches follow each other by id, cut at the body budget, at least one row each', async (t) => {
  const path = join(tempDir(t), 's.db')
  const { outbox } = await openStorage({ databasePath: path, databaseUrl: null }, { busyTimeoutMs: 2000 })
  const ids: string[] = []
  for (let i = 1; i <= 10; i++) {
    const id = `0190${String(i).padStart(8, '0')}-0000-7000-8000-000000000000`
    // Random bytes do not compress: each is stored as its 1,000 bytes, raw.
    const body = randomBytes(i === 5 ? 5000 : 1000)
    await outbox.enqueue({ id, dedupeKey: dedupeKeyOf(id, body), receivedAt: 1, source: 'webhook', version: 2, notificationUuid: id, notificationType: 'TEST', verification: 'unchecked', body }, ['a'], [])
    ids.push(id)
  }
  await outbox.close()
  const source = openCopySource(path, { batchBodyBytes: 2500 })
  t.teardown(() => source.close())
  const sizes: number[] = []
  const seen: string[] = []
  let after: string | number | null = null
  for (;;) {
    const rows = source.batch('notifications', after, 4)
    if (rows.length === 0) break
    sizes.push(rows.length)
    seen.push(...rows.map((r) => r.id as string))
    after = rows.at(-1)!.id
  }
  t.same(seen, ids, 'every row once, in id order')
  t.same(sizes, [2, 2, 1, 2, 2, 1], 'two 1,000-byte bodies fit 2,500 bytes; the 5,000-byte one goes alone')
  t.same(source.batch('deliveries', null, 4).map((r) => r.id), [1, 2, 3, 4], 'a table without bodies: by count alone')
})
