import Database from 'better-sqlite3'
import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path'
import { openDatabase, migrate } from './src/db/client.ts'
const p = join(mkdtempSync(join(tmpdir(), 'pl-')), 'x.db'); const d = openDatabase(p); migrate(d); d.close()
const db = new Database(p)
for (const q of [
 "select id from deliveries where target='t' and status='pending' and next_attempt_at <= 5 order by next_attempt_at, id limit 4",
 "select min(next_attempt_at) from deliveries where target='t' and status='pending'"]) console.log(q, db.prepare('explain query plan ' + q).all())
