// The compaction pass: rewrites the bodies a database stored as received
// (every row written before drizzle/0005) in the compressed form new rows
// take, a small batch per commit so that ingest interleaves with it. Nothing
// depends on it for correctness: a raw row reads as well as a compressed
// one. The server runs it once at each start; `storehook compact` runs it
// now. Freed pages are reused by later inserts; VACUUM is never required
// (it only gives the space back to the file system).
import type { FastifyBaseLogger as Logger } from 'fastify'
import { COMPACTION_START, type Storage } from './engine.ts'

type Outbox = Pick<Storage, 'compactBodies'>

// A batch of 12.6 KB bodies takes about 10 ms to compress and commit here
// (npm run bench:footprint): short enough not to hold a notification back.
export const COMPACT_BATCH = 100

export interface CompactionTotals {
  scanned: number
  rewritten: number
}

export async function compactAll (outbox: Outbox, opts: { signal?: AbortSignal; onBatch?: (totals: CompactionTotals) => void } = {}): Promise<CompactionTotals> {
  const totals = { scanned: 0, rewritten: 0 }
  let cursor = COMPACTION_START
  while (opts.signal?.aborted !== true) {
    const batch = await outbox.compactBodies(cursor, COMPACT_BATCH)
    totals.scanned += batch.scanned
    totals.rewritten += batch.rewritten
    cursor = batch.cursor
    opts.onBatch?.(totals)
    if (batch.scanned < COMPACT_BATCH) break
    // Let queued ingest commit between batches.
    await new Promise((resolve) => setImmediate(resolve))
  }
  return totals
}

// The server's pass: started when the server is ready, stopped (between
// batches) when it closes. Safe to stop twice.
export class Compaction {
  #abort = new AbortController()
  #running: Promise<void> | null = null
  #outbox: Outbox & Pick<Storage, 'tryExclusive'>
  #log: Logger

  constructor (opts: { outbox: Outbox & Pick<Storage, 'tryExclusive'>; log: Logger }) {
    this.#outbox = opts.outbox
    this.#log = opts.log
  }

  start (): void {
    if (this.#running !== null || this.#abort.signal.aborted) return
    // One instance at a time: two passes would compress the same rows twice
    // (each rewrite is guarded, so it stays correct, only wasted). An
    // instance that finds another compacting leaves the pass to it.
    this.#running = this.#outbox.tryExclusive('compaction', () => compactAll(this.#outbox, { signal: this.#abort.signal }))
      .then((r) => { if (r.ran && r.value.rewritten > 0) this.#log.info(r.value, 'Compressed stored bodies written before compression.') })
      // A failed pass leaves rows as they were, readable; the next start tries again.
      .catch((err: unknown) => { this.#log.warn({ err }, 'Compressing stored bodies failed; the next start tries again.') })
  }

  async stop (): Promise<void> {
    this.#abort.abort()
    await this.#running
  }
}
