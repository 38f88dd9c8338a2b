// Paging through the quarantine, shared by the admin API, the dashboard and
// the CLI. (Releasing is ingest's: src/ingest/ingest.ts, the same checks as a
// notification that arrives.)
import type { QuarantineSummary, UnorderedReads } from '../outbox/engine.ts'

export interface QuarantinePage {
  items: QuarantineSummary[]
  // The id to pass as the next page's cursor, or null on the last page.
  nextCursor: number | null
  size: { items: number; bytes: number }
}

// Newest first; the cursor is the last id of the previous page. One row more
// than the page is read to know whether another page follows.
export async function quarantinePage (store: Pick<UnorderedReads, 'listQuarantine' | 'quarantineSize'>, limit: number, cursor: number | null): Promise<QuarantinePage> {
  const rows = await store.listQuarantine(limit + 1, cursor)
  const items = rows.slice(0, limit)
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null, size: await store.quarantineSize() }
}
