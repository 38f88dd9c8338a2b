// Prunes delivered notifications older than RETENTION_DAYS (and the alert
// history as old), in small batches so each commit is short and ingest
// interleaves with it.
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Storage } from './engine.ts'

type Outbox = Pick<Storage, 'prune' | 'pruneAlerts'>

export const PRUNE_BATCH = 500

export async function pruneAll (outbox: Outbox, retentionMs: number, now = Date.now()): Promise<number> {
  if (retentionMs === 0) return 0
  // The alert history too (a few rows a day: one statement is enough).
  await outbox.pruneAlerts(now - retentionMs)
  let total = 0
  for (;;) {
    const n = await outbox.prune(now - retentionMs, PRUNE_BATCH)
    total += n
    if (n < PRUNE_BATCH) return total
    // Let queued ingest commit between batches.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

export class Retention {
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #outbox: Outbox & Pick<Storage, 'tryExclusive'>
  #retentionMs: number
  #intervalMs: number
  #log: Logger

  constructor (opts: { outbox: Outbox & Pick<Storage, 'tryExclusive'>; retentionMs: number; intervalMs: number; log: Logger }) {
    this.#outbox = opts.outbox
    this.#retentionMs = opts.retentionMs
    this.#intervalMs = opts.intervalMs
    this.#log = opts.log
  }

  start (): void {
    if (this.#retentionMs === 0 || this.#timer !== null) return
    this.#timer = setTimeout(() => { this.#run() }, 10_000)
  }

  #run (): void {
    // One instance at a time: two would only contend for the same rows (the
    // DELETE itself is safe to run twice at once, writes.ts). One that finds
    // another pruning skips to its next interval.
    this.#running = this.#outbox.tryExclusive('retention', () => pruneAll(this.#outbox, this.#retentionMs))
      .then((r) => { if (r.ran && r.value > 0) this.#log.info({ pruned: r.value }, 'Pruned delivered notifications past retention.') })
      .catch((err: unknown) => { this.#log.warn({ err }, 'Pruning failed; will try again.') })
      .finally(() => {
        this.#running = null
        if (this.#timer !== null) this.#timer = setTimeout(() => { this.#run() }, this.#intervalMs)
      })
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#running
  }
}
