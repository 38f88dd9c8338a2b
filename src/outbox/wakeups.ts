// The listeners of Storage.onEnqueued, as both engines keep them: the
// targets with new rows to claim, and the op number from which a claim sees
// them (Storage.sequence).
import type { EnqueueResult } from './engine.ts'

export type EnqueueListener = (targets: readonly string[], seenFrom: number) => void

export class Wakeups {
  #listeners = new Set<EnqueueListener>()

  on (fn: EnqueueListener): () => void {
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  notify (targets: readonly string[], seenFrom: number): void {
    if (targets.length === 0) return
    for (const fn of this.#listeners) fn(targets, seenFrom)
  }

  // After an enqueue: only targets with rows still to claim need their
  // worker woken; the leased ones went to the caller.
  enqueued (result: EnqueueResult, seenFrom: number): void {
    this.notify(Wakeups.toClaim(result), seenFrom)
  }

  static toClaim (result: EnqueueResult): string[] {
    return result.targets.filter((t) => !result.leased.some((l) => l.target === t))
  }
}
