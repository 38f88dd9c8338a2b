// The decoded document (src/decoded/document.ts) of each notification a
// decoded target sends, built once and shared: every decoded target sends
// the same bytes, and a retry soon after reuses them. The document is a pure
// function of the row, so one rebuilt after it left the cache (a retry
// hours later, a restart) is the same bytes, and so is what the dashboard
// shows: nothing is stored besides Apple's body.
import { decodedDocument } from '../decoded/document.ts'
import type { ClaimedDelivery } from '../outbox/engine.ts'

// Room for the documents of the notifications in flight to every decoded
// target, with a margin: a document is about twice Apple's body (a few KB),
// and the byte cap holds whatever BODY_LIMIT_BYTES lets in.
const MAX_DOCUMENTS = 256
const MAX_BYTES = 16 * 1_048_576

export class DecodedBodies {
  // Insertion order is age: the first key is the oldest.
  readonly #cache = new Map<string, Buffer>()
  #bytes = 0
  // Documents built so far (a notification counted once while it stays cached).
  built = 0

  // Throws the decoder's AppError when the stored body is not a notification.
  get (c: Pick<ClaimedDelivery, 'notificationId' | 'body' | 'facts'>): Buffer {
    const cached = this.#cache.get(c.notificationId)
    if (cached !== undefined) return cached
    const doc = decodedDocument(c.body, { id: c.notificationId, ...c.facts })
    this.built++
    this.#cache.set(c.notificationId, doc)
    this.#bytes += doc.length
    for (const [id, old] of this.#cache) {
      if (this.#cache.size <= MAX_DOCUMENTS && this.#bytes <= MAX_BYTES) break
      this.#cache.delete(id)
      this.#bytes -= old.length
    }
    return doc
  }
}
