// Who gets a fresh delivery: the one place that decides it. Ingest hands
// every new notification here (not to the outbox), with the targets routing
// chose. A target whose worker has a free slot gets its delivery without a
// claim: the commit that stores the notification writes that row already
// leased to the worker, and the worker sends the body it has in memory (no
// claim, no second commit, no read back from disk). Every other target's
// worker is woken to claim its row, as after a replay.
import type { ClaimedDelivery, EnqueueResult, NewNotification, Storage } from '../outbox/engine.ts'

// What a target's worker offers the dispatcher (worker.ts implements it).
export interface Slots {
  // How long the lease of a handed-over delivery runs, as a claim's would.
  readonly leaseMs: number
  // Room for one more delivery right now? Every true is followed by take() or cancel().
  reserve: () => boolean
  take: (c: ClaimedDelivery, leaseEnd: number) => void
  cancel: () => void
  // There are rows to claim, visible to a claim from op number `seenFrom` on (Outbox.sequence).
  wake: (seenFrom: number) => void
}

// All the dispatcher asks of the storage: store with leases, and say which
// targets were left with rows to claim (after an enqueue or a replay).
export type DispatchStore = Pick<Storage, 'enqueue' | 'onEnqueued'>

export class Dispatcher {
  readonly #outbox: DispatchStore
  readonly #workers: ReadonlyMap<string, Slots>
  #unsubscribe: (() => void) | null = null

  // Without workers (the CLI runs none) it only stores: the server's workers
  // claim the rows later.
  constructor (outbox: DispatchStore, workers: ReadonlyMap<string, Slots> = new Map()) {
    this.#outbox = outbox
    this.#workers = workers
  }

  // From now on, every row left to claim (by dispatch() or by a replay,
  // which goes straight to the outbox) wakes its target's worker.
  listen (): void {
    this.#unsubscribe ??= this.#outbox.onEnqueued((targets, seenFrom) => {
      for (const name of targets) this.#workers.get(name)?.wake(seenFrom)
    })
  }

  close (): void {
    this.#unsubscribe?.()
    this.#unsubscribe = null
  }

  async dispatch (n: NewNotification, targets: readonly string[]): Promise<EnqueueResult> {
    const reserved: Array<{ target: string; worker: Slots; leaseEnd: number }> = []
    for (const target of targets) {
      const worker = this.#workers.get(target)
      if (worker?.reserve() === true) reserved.push({ target, worker, leaseEnd: Date.now() + worker.leaseMs })
    }
    let result: EnqueueResult
    try {
      result = await this.#outbox.enqueue(n, targets, reserved.map((r) => [r.target, r.leaseEnd] as const))
    } catch (err) {
      for (const { worker } of reserved) worker.cancel()
      throw err
    }
    // A duplicate writes no row, so nothing is leased: its reservations end.
    for (const { target, worker, leaseEnd } of reserved) {
      const leased = result.leased.find((d) => d.target === target)
      if (leased === undefined) worker.cancel()
      else worker.take({ ...leased, body: n.body as Buffer, facts: { source: n.source, receivedAt: n.receivedAt, verification: n.verification, verificationError: n.verificationError ?? null } }, leaseEnd)
    }
    return result
  }
}
