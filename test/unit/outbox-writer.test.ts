// The writer thread can die (its database unopenable, an addon fault): the
// outbox must fail the calls it had, say so, and start a new writer with the
// next call, without a process restart.
import { mkdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { migrate, openDatabase } from '../../src/db/client.ts'
import { Outbox, StorageError } from '../../src/outbox/outbox.ts'
import { listDeliveries } from '../../src/outbox/store.ts'
import { tempDir } from '../helpers/app.ts'

t.test('a writer that dies is replaced by the next call', async (t) => {
  const path = join(tempDir(t), 'w.db')
  // A directory where the file should be: the writer cannot open it and dies.
  mkdirSync(path)
  const crashes: unknown[] = []
  const outbox = new Outbox({ path, busyTimeoutMs: 100, onCrash: (err) => crashes.push(err) })
  t.teardown(() => outbox.close())

  await t.rejects(outbox.probe(), 'the call in flight when the writer died fails')
  t.ok(crashes.length >= 1, 'the crash is reported')
  await t.rejects(outbox.probe(), 'still no database: the replacement dies too')

  // The cause goes away: a real, migrated database appears at the path.
  rmdirSync(path)
  const database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())

  await outbox.probe()
  const stored = await outbox.enqueue({
    id: 'n1', dedupeKey: 'n1', receivedAt: Date.now(), source: 'webhook', version: 2, notificationUuid: 'n1',
    notificationType: 'TEST', verification: 'unchecked', body: Buffer.from('{"signedPayload":"a.b.c"}')
  }, ['a'])
  t.same(stored.targets, ['a'], 'the new writer stores')
  t.equal(listDeliveries(database.db, 'n1').length, 1, 'and its commit is visible to another connection')
})

t.test('a closed outbox refuses new calls with a StorageError', async (t) => {
  const path = join(tempDir(t), 'c.db')
  const database = openDatabase(path)
  migrate(database)
  t.teardown(() => database.close())
  const outbox = new Outbox({ path, busyTimeoutMs: 100 })
  await outbox.probe()
  await outbox.close()
  await outbox.close()
  const err = await outbox.probe().catch((e: unknown) => e)
  t.ok(err instanceof StorageError)
  t.match((err as Error).message, /closed/)
})
