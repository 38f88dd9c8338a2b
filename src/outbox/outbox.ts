// The outbox as the rest of the program sees it: every write goes through
// the group commit and resolves after it is durable; listeners learn which
// targets have new work right after the commit, so workers need not poll.
import type { Database_ } from '../db/client.ts'
import { GroupCommit } from './group-commit.ts'
import * as store from './store.ts'

export type { AttemptRecord, ClaimedDelivery, EnqueueResult, NewNotification } from './store.ts'

export class Outbox {
  readonly database: Database_
  readonly commits: GroupCommit
  #listeners = new Set<(targets: readonly string[]) => void>()

  constructor (database: Database_) {
    this.database = database
    this.commits = new GroupCommit(database)
  }

  onEnqueued (fn: (targets: readonly string[]) => void): () => void {
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  #notify (targets: readonly string[]): void {
    if (targets.length === 0) return
    for (const fn of this.#listeners) fn(targets)
  }

  async enqueue (n: store.NewNotification, targets: readonly string[]): Promise<store.EnqueueResult> {
    const db = this.database.db
    const result = await this.commits.run(() => store.enqueue(db, n, targets, Date.now()))
    this.#notify(result.targets)
    return result
  }

  claim (target: string, limit: number, leaseMs: number): Promise<store.ClaimedDelivery[]> {
    const db = this.database.db
    return this.commits.run(() => {
      const now = Date.now()
      return store.claimDue(db, target, limit, now, now + leaseMs)
    })
  }

  complete (a: store.AttemptRecord): Promise<boolean> {
    const db = this.database.db
    return this.commits.run(() => store.complete(db, a, Date.now()))
  }

  scheduleRetry (a: store.AttemptRecord, nextAttemptAt: number): Promise<boolean> {
    const db = this.database.db
    return this.commits.run(() => store.scheduleRetry(db, a, nextAttemptAt, Date.now()))
  }

  markDead (a: store.AttemptRecord): Promise<boolean> {
    const db = this.database.db
    return this.commits.run(() => store.markDead(db, a, Date.now()))
  }

  releaseAttempt (a: store.AttemptRecord): Promise<boolean> {
    const db = this.database.db
    return this.commits.run(() => store.releaseAttempt(db, a, Date.now()))
  }

  release (deliveryId: number, fence: number): Promise<boolean> {
    const db = this.database.db
    return this.commits.run(() => store.release(db, deliveryId, fence, Date.now()))
  }

  reclaimLeases (): Promise<number> {
    const db = this.database.db
    return this.commits.run(() => store.reclaimLeases(db, Date.now()))
  }

  // Replays to `targets`, or to every target the notification already has.
  async replay (notificationId: string, targets?: readonly string[]): Promise<string[]> {
    const db = this.database.db
    const replayed = await this.commits.run(() =>
      store.replay(db, notificationId, targets ?? store.targetsOf(db, notificationId), Date.now()))
    this.#notify(replayed)
    return replayed
  }

  probe (): Promise<void> {
    const db = this.database.db
    return this.commits.run(() => store.touchHeartbeat(db, Date.now()))
  }

  nextDueAt (target: string): number | null {
    return store.nextDueAt(this.database.db, target)
  }

  close (): void {
    this.commits.close()
  }
}
