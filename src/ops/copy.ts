// `storehook copy --to <postgres URL>` (issue 16): the SQLite file of
// DATABASE_PATH copied into an empty PostgreSQL database, to move from one
// machine to several. Table by table (copy-tables.ts), in id order, a batch a
// transaction, so an interrupted copy leaves the target holding a prefix of
// each table, and a second run continues after the highest id each table
// holds. Checked at the start (what the target holds must be such a prefix of
// this file, else it is someone else's data) and at the end (counts per
// table, per delivery status, and the quarantine's totals).
import { existsSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { maskedUrl } from '../db/pg-client.ts'
import { openCopySource, type CopySource } from '../outbox/copy-source.ts'
import { COPY_TABLES, type CopyCounts, type CopyTable } from '../outbox/copy-tables.ts'
import { openCopyTarget, type CopyTarget } from '../outbox/pg/copy.ts'
import { CommandError, fail } from './command-line.ts'

export interface CopyOptions {
  batchSize: number
  // Stop after this many batches (null: run to the end); a later run continues.
  maxBatches: number | null
  // One line of progress or summary.
  say: (line: string) => void
  // How often a table's progress is printed while it is copied.
  progressEveryMs?: number
}

// An error from the driver, shown without the URL's password whatever it quotes.
function scrubbed (err: unknown, url: string): string {
  const message = err instanceof Error ? err.message : String(err)
  let password = ''
  try { password = decodeURIComponent(new URL(url).password) } catch {}
  return password === '' ? message : message.split(password).join('***')
}

// The target's rows of each table must be the first rows of the source's,
// as an interrupted copy of this file leaves them: as many as the source
// has up to the target's highest id, and that row equal on both sides.
async function checkPrefix (source: CopySource, target: CopyTarget, where: string): Promise<void> {
  for (const table of COPY_TABLES) {
    const { count, maxId } = await target.progress(table)
    if (maxId === null) continue
    const expected = source.rowAt(table, maxId)
    if (count !== source.countUpTo(table, maxId) || expected === null || !isDeepStrictEqual(await target.rowAt(table, maxId), expected)) {
      fail(`${where} already holds ${table} that are not from a copy of this database: copy into an empty database (or one an interrupted copy of this file left)`)
    }
  }
}

function differences (want: CopyCounts, got: CopyCounts): string[] {
  const out: string[] = []
  for (const table of COPY_TABLES) if (want.rows[table] !== got.rows[table]) out.push(`${table} ${want.rows[table]} in the file, ${got.rows[table]} copied`)
  for (const [status, n] of Object.entries(want.deliveries)) {
    const copied = got.deliveries[status as keyof CopyCounts['deliveries']]
    if (n !== copied) out.push(`${status} deliveries ${n} in the file, ${copied} copied`)
  }
  if (!isDeepStrictEqual(want.quarantine, got.quarantine)) out.push(`quarantine totals ${want.quarantine.items} items ${want.quarantine.bytes} bytes in the file, ${got.quarantine.items} items ${got.quarantine.bytes} bytes kept`)
  return out
}

// Returns whether the copy is complete (false: stopped by maxBatches).
export async function copyToPostgres (sourcePath: string, url: string, options: CopyOptions): Promise<boolean> {
  // Opening a path that does not exist would create an empty file, and copy nothing, successfully.
  if (!existsSync(sourcePath)) fail(`DATABASE_PATH ${sourcePath} does not exist: set it to the file to copy`)
  const where = maskedUrl(url)
  const every = options.progressEveryMs ?? 1000
  const source = openCopySource(sourcePath)
  try {
    const target = await openCopyTarget(url).catch((err: unknown) => { throw new CommandError(`cannot copy into ${where}: ${scrubbed(err, url)}`) })
    try {
      const want = source.counts()
      options.say(`Copying ${sourcePath} into ${where}: ${COPY_TABLES.map((t) => `${want.rows[t]} ${t}`).join(', ')}.`)
      await checkPrefix(source, target, where)
      let batches = 0
      for (const table of COPY_TABLES) {
        let { count: done, maxId: after } = await target.progress(table)
        let said = Date.now()
        for (;;) {
          if (options.maxBatches !== null && batches >= options.maxBatches) {
            options.say(`Stopped after ${batches} batch(es) as asked (--max-batches), in ${table} at ${done}/${want.rows[table]}: run storehook copy again to continue.`)
            return false
          }
          const rows = source.batch(table, after, options.batchSize)
          if (rows.length === 0) break
          const added = await target.insert(table, rows)
          // Rows past the target's highest id can only clash with rows that did not come from this file.
          if (added !== rows.length) fail(`${where} already holds ${table} that clash with rows of this database (${rows.length - added} in one batch): copy into an empty database`)
          done += added
          after = rows.at(-1)!.id
          batches++
          if (Date.now() - said >= every) {
            options.say(`  ${table}: ${done}/${want.rows[table]}`)
            said = Date.now()
          }
        }
        options.say(`  ${table}: ${done}/${want.rows[table]} copied`)
      }
      const got = await target.counts()
      const differ = differences(want, got)
      if (differ.length > 0) fail(`the copy does not match the file: ${differ.join('; ')}`)
      if (source.changedSince(want)) fail(`${sourcePath} was written during the copy: stop every storehook using it, then run storehook copy again to copy the rest`)
      const { pending, delivered, dead } = got.deliveries
      options.say(`Copied and checked: ${COPY_TABLES.map((t) => `${got.rows[t]} ${t}`).join(', ')}; deliveries ${pending} pending, ${delivered} delivered, ${dead} dead; quarantine ${got.quarantine.items} items, ${got.quarantine.bytes} bytes.`)
      return true
    } finally {
      await target.close()
    }
  } finally {
    source.close()
  }
}
