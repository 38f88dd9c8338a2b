// Paging through the quarantine, shared by the admin API, the dashboard and
// the CLI. (Releasing is ingest's: src/ingest/ingest.ts, the same checks as a
// notification that arrives.)
import type { Db } from '../db/client.ts'
import { listQuarantine, quarantineSize, type QuarantineRow } from '../outbox/store.ts'

export interface QuarantinePage {
  items: Array<Omit<QuarantineRow, 'body'>>
  // The id to pass as the next page's cursor, or null on the last page.
  nextCursor: number | null
  size: { items: number; bytes: number }
}

// Newest first; the cursor is the last id of the previous page. One row more
// than the page is read to know whether another page follows.
export async function quarantinePage (db: Db, limit: number, cursor: number | null): Promise<QuarantinePage> {
  const rows = listQuarantine(db, limit + 1, cursor)
  const items = rows.slice(0, limit)
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null, size: quarantineSize(db) }
}
