// Drains one target: claim due deliveries up to the target's concurrency,
// POST each, record the outcome. One worker per target, so a dead or slow
// target only ever fills its own slots. A fresh notification usually skips
// the claim: the commit that stores it leases it to this worker (Handoff).
import pRetry from 'p-retry'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { TargetConfig } from '../config.ts'
import type { AttemptOutcome } from '../db/vocabulary.ts'
import type { AttemptRecord, ClaimedDelivery, Handoff, Outbox } from '../outbox/outbox.ts'
import { retryDelayMs, type BackoffOptions } from './backoff.ts'
import { abortInflight, createClient, deliver, type DeliveryOutcome, type TargetClient } from './deliver.ts'

export interface WorkerOptions {
  target: TargetConfig
  outbox: Outbox
  log: Logger
  retry: BackoffOptions & { giveUpAfterMs: number }
  pollIntervalMs: number
  onOutcome?: (target: string, outcome: DeliveryOutcome, verdict: Verdict) => void
  // Deliveries given up without an attempt of their own (the target was failing).
  onExpired?: (target: string, count: number) => void
}

export type Verdict = AttemptOutcome

// After this many failed attempts in a row the target is taken to be down:
// the worker stops sending it every due delivery (each would fail, and each
// failure costs a request and a write, all of it paid by the ingest too) and
// probes it with one delivery at a time, on the retry schedule, until one
// succeeds. The rest stay pending, due, and go out at full speed after that.
const FAILING_AFTER = 5
// A down target is probed at least this often, so its return is noticed
// within a minute (unless it asked for longer with Retry-After).
const PROBE_MAX_MS = 60_000

export class TargetWorker implements Handoff {
  readonly target: TargetConfig
  #outbox: Outbox
  #log: Logger
  #opts: WorkerOptions
  #client: TargetClient
  // Longer than a request can take, so a live attempt is never re-claimed.
  readonly leaseMs: number
  // Every claimed delivery until its outcome is recorded (shutdown waits for these).
  #inflight = new Map<number, Promise<void>>()
  // Requests on the wire: what the concurrency limit counts. A slot frees as
  // soon as the target answers, so the next claim shares a commit with the
  // previous outcome instead of waiting for it.
  #sending = 0
  // Claimed, waiting for a free slot, with the time their lease runs out.
  #ready: Array<{ c: ClaimedDelivery; leaseEnd: number }> = []
  // Fresh deliveries promised to this worker and being committed (outbox.ts Handoff).
  #reserved = 0
  // The database may hold due deliveries no claim has picked up yet. Set by
  // every outside wake (a commit that wrote a row to claim, the due-time
  // timer, a replay); cleared when a claim that comes after all of them (in
  // the writer's order, Outbox.sequence) comes back short. While it is clear,
  // finishing a delivery claims nothing: fresh ones arrive by handoff.
  #backlog = true
  #backlogFrom = 0
  // How long this target takes to answer, smoothed: sets how far ahead to claim.
  #answerMs = 100
  // Failed attempts in a row, and while failing, when the next probe may go.
  #failures = 0
  #probeAt = 0
  #started = false
  #stopping = false
  #stopped: Promise<void> | null = null
  #claiming = false
  #again = false
  #tickQueued: NodeJS.Immediate | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (opts: WorkerOptions) {
    this.target = opts.target
    this.#outbox = opts.outbox
    this.#log = opts.log
    this.#opts = opts
    this.#client = createClient(opts.target)
    this.leaseMs = opts.target.timeoutMs * 2 + 5_000
  }

  start (): void {
    if (this.#started) return
    this.#started = true
    this.wake()
  }

  inflight (): number {
    return this.#sending
  }

  // `seenFrom`: the op number from which a claim sees the work this wake is
  // about; by default, whatever is already asked of the writer.
  wake (seenFrom = this.#outbox.sequence()): void {
    this.#backlog = true
    if (seenFrom > this.#backlogFrom) this.#backlogFrom = seenFrom
    this.#schedule()
  }

  // Never beyond what a claim would have taken ahead. Older deliveries due
  // in the database still get their share: while the backlog flag is up,
  // every slot that frees runs a claim for the room left.
  reserve (): boolean {
    if (!this.#started || this.#stopping || this.#failing()) return false
    if (this.#sending + this.#ready.length + this.#reserved >= this.#claimAhead()) return false
    this.#reserved++
    return true
  }

  take (c: ClaimedDelivery, leaseEnd: number): void {
    this.#reserved--
    if (this.#stopping || this.#failing()) {
      void this.#giveBack(c).finally(() => this.wake())
      return
    }
    this.#ready.push({ c, leaseEnd })
    this.#pump()
  }

  cancel (): void {
    this.#reserved--
  }

  #schedule (): void {
    if (!this.#started || this.#stopping || this.#tickQueued !== null) return
    this.#tickQueued = setImmediate(() => {
      this.#tickQueued = null
      void this.#tick()
    })
  }

  async #tick (): Promise<void> {
    if (this.#claiming) {
      this.#again = true
      return
    }
    this.#claiming = true
    try {
      if (this.#failing()) {
        const wait = this.#probeAt - Date.now()
        if (wait > 0) {
          await this.#arm(wait)
          return
        }
      }
      if (!this.#backlog && !this.#failing()) return
      // While failing: one probe at a time, nothing claimed ahead.
      const want = (this.#failing() ? 1 : this.#claimAhead()) - this.#sending - this.#ready.length - this.#reserved
      if (want <= 0) return
      const claimSeq = this.#outbox.sequence()
      const leaseEnd = Date.now() + this.leaseMs
      const claimed = await this.#outbox.claim(this.target.name, want, this.leaseMs)
      if (this.#failing()) {
        // The others, never probed, still give up on time (the probe itself,
        // leased now, goes through the usual verdict).
        const expired = await this.#outbox.expire(this.target.name, Date.now() - this.#opts.retry.giveUpAfterMs)
        if (expired > 0) {
          this.#log.error({ target: this.target.name, expired }, 'Deliveries are dead: gave up while the target was failing.')
          this.#opts.onExpired?.(this.target.name, expired)
        }
      }
      if (this.#stopping) {
        await Promise.all(claimed.map((c) => this.#giveBack(c)))
        return
      }
      for (const c of claimed) this.#ready.push({ c, leaseEnd })
      this.#pump()
      if (claimed.length < want) {
        // Caught up, unless a wake is about work this claim came too early to see.
        if (this.#backlogFrom <= claimSeq) this.#backlog = false
        await this.#arm()
      }
    } catch (err) {
      // The database is unavailable (disk full, locked): try again on the poll.
      this.#log.error({ target: this.target.name, err }, 'Claiming deliveries failed.')
      void this.#arm(this.#opts.pollIntervalMs)
    } finally {
      this.#claiming = false
      if (this.#again) {
        this.#again = false
        this.#schedule()
      }
    }
  }

  // Sleeps until the next delivery is due, but never longer than the poll
  // interval: the backstop for rows added by another process (the CLI).
  async #arm (delayMs?: number): Promise<void> {
    let delay = delayMs
    if (delay === undefined) {
      const due = await this.#outbox.nextDueAt(this.target.name)
      delay = due === null ? this.#opts.pollIntervalMs : Math.max(0, due - Date.now())
    }
    if (this.#stopping) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.wake()
    }, Math.min(delay, this.#opts.pollIntervalMs))
  }

  // Claims run ahead of the requests on the wire, so that a slot that frees
  // starts its next request without a round trip to the database: about a
  // second of work per slot at the pace the target answers (a backlog to a
  // fast target drains in big claims; a slow one gets two per slot).
  #claimAhead (): number {
    const perSlot = Math.min(64, Math.max(2, Math.floor(1000 / Math.max(1, this.#answerMs))))
    return this.target.concurrency * perSlot
  }

  // A claim that was never sent goes back: due at once, no attempt counted.
  // If the database refuses, the lease expiring does the same, later.
  #giveBack (c: ClaimedDelivery): Promise<boolean> {
    return this.#outbox.release(c.deliveryId, c.fence).catch(() => false)
  }

  #failing (): boolean {
    return this.#failures >= FAILING_AFTER
  }

  #pump (): void {
    const slots = this.#failing() ? 1 : this.target.concurrency
    while (!this.#stopping && this.#sending < slots && this.#ready.length > 0) {
      const { c, leaseEnd } = this.#ready.shift()!
      // The attempt must end inside the lease, or the row would fall due
      // again while it is on the wire. One that waited too long (the target
      // slowed down after the claim) goes back, due at once, fence bumped.
      if (Date.now() + this.target.timeoutMs + 1_000 > leaseEnd) {
        void this.#giveBack(c).finally(() => this.wake())
        continue
      }
      this.#start(c)
    }
  }

  #start (c: ClaimedDelivery): void {
    this.#sending++
    const p = this.#attempt(c)
      .catch((err: unknown) => {
        // The outcome could not be recorded even after retries: the lease
        // will expire and the delivery will be tried again (at-least-once).
        this.#log.error({ notificationId: c.notificationId, target: this.target.name, attempt: c.attempt, err }, 'Recording a delivery outcome failed.')
        // Its lease runs out later: the due-time timer must know.
        this.wake()
      })
      .finally(() => {
        this.#inflight.delete(c.deliveryId)
        this.#schedule()
      })
    this.#inflight.set(c.deliveryId, p)
  }

  async #attempt (c: ClaimedDelivery): Promise<void> {
    const startedAt = Date.now()
    let outcome: DeliveryOutcome
    try {
      outcome = await deliver(this.#client, { notificationId: c.notificationId, attempt: c.attempt, body: c.body })
    } finally {
      this.#sending--
      this.#pump()
      this.#schedule()
    }
    this.#answerMs += (outcome.durationMs - this.#answerMs) / 8
    const record: AttemptRecord = {
      deliveryId: c.deliveryId,
      fence: c.fence,
      attempt: c.attempt,
      startedAt,
      durationMs: outcome.durationMs,
      statusCode: outcome.statusCode,
      error: outcome.error,
      responseExcerpt: outcome.responseExcerpt
    }
    const now = Date.now()
    this.#track(outcome, now)
    let verdict: Verdict
    let nextAttemptAt: number | null = null
    if (outcome.ok) {
      verdict = 'delivered'
    } else if (outcome.aborted) {
      verdict = 'released'
    } else if (now - c.retrySince >= this.#opts.retry.giveUpAfterMs) {
      verdict = 'dead'
    } else {
      verdict = 'retry'
      nextAttemptAt = now + retryDelayMs(c.attempt, outcome.retryAfterMs, this.#opts.retry)
    }
    // Short in-process retries only: a busy database usually frees within
    // milliseconds. Anything longer is covered by the lease expiring.
    const settle = (): Promise<boolean> => {
      switch (verdict) {
        case 'delivered': return this.#outbox.complete(record)
        case 'dead': return this.#outbox.markDead(record)
        case 'released': return this.#outbox.releaseAttempt(record)
        default: return this.#outbox.scheduleRetry(record, nextAttemptAt!)
      }
    }
    // p-retry only once the first try failed: set up on every delivery, it
    // cost more CPU than the database write it wraps.
    const current = await settle().catch(() => pRetry(settle, { retries: 3, minTimeout: 20, maxTimeout: 200 }))
    const fields = {
      notificationId: c.notificationId,
      target: this.target.name,
      attempt: c.attempt,
      status: outcome.statusCode,
      durationMs: outcome.durationMs,
      ...(nextAttemptAt !== null ? { nextAttemptAt: new Date(nextAttemptAt).toISOString() } : {}),
      ...(current ? {} : { stale: true })
    }
    if (verdict === 'delivered') this.#log.info(fields, 'Delivered.')
    else if (verdict === 'dead') this.#log.error({ ...fields, error: outcome.error }, 'Delivery is dead: gave up.')
    else if (verdict === 'released') this.#log.info(fields, 'Delivery released for shutdown.')
    else this.#log.warn({ ...fields, error: outcome.error }, 'Delivery failed; will retry.')
    // A delivery due again (now or after its backoff) is database work: the
    // next claim, or the due-time timer, must see it.
    if (verdict === 'retry' || verdict === 'released') this.wake()
    this.#opts.onOutcome?.(this.target.name, outcome, verdict)
  }

  #track (outcome: DeliveryOutcome, now: number): void {
    if (outcome.ok) {
      if (this.#failing()) this.#log.info({ target: this.target.name, failures: this.#failures }, 'Target answers again: delivering at full speed.')
      this.#failures = 0
      return
    }
    if (outcome.aborted) return
    this.#failures++
    if (this.#failures === FAILING_AFTER) {
      this.#log.warn({ target: this.target.name, failures: this.#failures }, 'Target is failing: probing it with one delivery at a time until it answers.')
      // What was claimed ahead goes back, due at once, no attempt counted.
      for (const { c } of this.#ready.splice(0)) void this.#giveBack(c)
    }
    if (!this.#failing()) return
    const probes = this.#failures - FAILING_AFTER + 1
    const delay = outcome.retryAfterMs !== null
      ? retryDelayMs(probes, outcome.retryAfterMs, this.#opts.retry)
      : Math.min(PROBE_MAX_MS, retryDelayMs(probes, null, this.#opts.retry))
    this.#probeAt = now + delay
  }

  // Lets in-flight deliveries finish until the deadline, then aborts them;
  // aborted ones are released (due again at once, attempt kept in history).
  stop (deadlineMs: number): Promise<void> {
    this.#stopped ??= this.#stop(deadlineMs)
    return this.#stopped
  }

  async #stop (deadlineMs: number): Promise<void> {
    this.#stopping = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#tickQueued !== null) clearImmediate(this.#tickQueued)
    this.#timer = null
    this.#tickQueued = null
    const drained = Promise.all(this.#inflight.values()).then(() => true)
    let timeout: NodeJS.Timeout | undefined
    const expired = new Promise<boolean>((resolve) => { timeout = setTimeout(() => resolve(false), deadlineMs) })
    const inTime = await Promise.race([drained, expired])
    clearTimeout(timeout)
    if (!inTime) {
      this.#log.warn({ target: this.target.name, inflight: this.#inflight.size }, 'Shutdown deadline reached; aborting in-flight deliveries.')
      abortInflight(this.#client)
      await Promise.all(this.#inflight.values())
    }
    // A tick may still be waiting on its claim; it releases what it got.
    while (this.#claiming) await new Promise((resolve) => setImmediate(resolve))
    const waiting = this.#ready.splice(0)
    await Promise.all(waiting.map(({ c }) => this.#giveBack(c)))
    await this.#client.agent.close()
  }
}
