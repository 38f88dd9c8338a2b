// Drains one target: claim due deliveries up to the target's concurrency,
// POST each, record the outcome. One worker per target, so a dead or slow
// target only ever fills its own slots. A fresh notification usually skips
// the claim: the commit that stores it leases it to this worker (dispatcher.ts).
import { setImmediate as nextTurn } from 'node:timers/promises'
import pRetry from 'p-retry'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { TargetConfig } from '../config.ts'
import type { AttemptRecord, ClaimedDelivery, Storage as Outbox } from '../outbox/engine.ts'
import { DecodedBodies } from './decoded-bodies.ts'
import type { Slots } from './dispatcher.ts'
import { abortInflight, createClient, deliver, type DeliveryOutcome, type TargetClient } from './deliver.ts'
import { decide, type Decision, type RetryPolicy, type Verdict } from './verdict.ts'
import { enterMode, type WorkerMode } from './worker-mode.ts'

export interface WorkerOptions {
  target: TargetConfig
  outbox: Outbox
  log: Logger
  retry: RetryPolicy
  pollIntervalMs: number
  onOutcome?: (target: string, outcome: DeliveryOutcome, verdict: Verdict) => void
  // Deliveries given up without an attempt of their own (the target was failing).
  onExpired?: (target: string, count: number) => void
  // The documents decoded targets send, shared by every worker (default: this worker's own).
  decoded?: DecodedBodies
}

type ClaimLoop = 'none' | 'running' | 'rerun'

export class TargetWorker implements Slots {
  readonly target: TargetConfig
  #outbox: Outbox
  #log: Logger
  #opts: WorkerOptions
  #client: TargetClient
  #decoded: DecodedBodies
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
  // Fresh deliveries promised to this worker and being committed (dispatcher.ts).
  #reserved = 0
  // The database may hold due deliveries no claim has picked up yet, visible
  // to a claim from this op number on (in the writer's order, Outbox.sequence);
  // null when caught up. Set by every outside wake (a commit that wrote a row
  // to claim, the due-time timer, a replay); cleared when a claim that comes
  // after all of them comes back short. While it is null, finishing a
  // delivery claims nothing: fresh ones arrive by the dispatcher.
  #unclaimedFrom: number | null = 0
  // How long this target takes to answer, smoothed: sets how far ahead to claim.
  #answerMs = 100
  // Failed attempts in a row, and while probing, when the next probe may go.
  #failures = 0
  #probeAt = 0
  // Changed only through #enter (worker-mode.ts has the allowed moves).
  #mode: WorkerMode = 'idle'
  #stopped: Promise<void> | null = null
  // The claim loop: none running, one running, or one running and another
  // asked for meanwhile (it runs when this one ends).
  #claim: ClaimLoop = 'none'
  #tickQueued: NodeJS.Immediate | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (opts: WorkerOptions) {
    this.target = opts.target
    this.#outbox = opts.outbox
    this.#log = opts.log
    this.#opts = opts
    this.#client = createClient(opts.target)
    this.#decoded = opts.decoded ?? new DecodedBodies()
    this.leaseMs = opts.target.timeoutMs * 2 + 5_000
  }

  start (): void {
    if (this.#mode !== 'idle') return
    this.#enter('running')
    this.wake()
  }

  #enter (mode: WorkerMode): void {
    this.#mode = enterMode(this.#mode, mode)
  }

  // Sending: running, or probing a failing target.
  #active (): boolean {
    return this.#mode === 'running' || this.#mode === 'probing'
  }

  // `seenFrom`: the op number from which a claim sees the work this wake is
  // about; by default, whatever is already asked of the writer.
  wake (seenFrom = this.#outbox.sequence()): void {
    this.#unclaimedFrom = Math.max(this.#unclaimedFrom ?? 0, seenFrom)
    this.#schedule()
  }

  // Never beyond what a claim would have taken ahead. Older deliveries due
  // in the database still get their share: while rows are left unclaimed,
  // every slot that frees runs a claim for the room left.
  reserve (): boolean {
    if (this.#mode !== 'running') return false
    if (this.#sending + this.#ready.length + this.#reserved >= this.#claimAhead()) return false
    this.#reserved++
    return true
  }

  take (c: ClaimedDelivery, leaseEnd: number): void {
    this.#reserved--
    if (this.#mode !== 'running') {
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
    if (!this.#active() || this.#tickQueued !== null) return
    this.#tickQueued = setImmediate(() => {
      this.#tickQueued = null
      void this.#tick()
    })
  }

  async #tick (): Promise<void> {
    if (this.#claim !== 'none') {
      this.#claim = 'rerun'
      return
    }
    this.#claim = 'running'
    try {
      if (this.#mode === 'probing') {
        const wait = this.#probeAt - Date.now()
        if (wait > 0) {
          await this.#arm(wait)
          return
        }
      }
      if (this.#unclaimedFrom === null && this.#mode !== 'probing') return
      // While probing: one probe at a time, nothing claimed ahead.
      const want = (this.#mode === 'probing' ? 1 : this.#claimAhead()) - this.#sending - this.#ready.length - this.#reserved
      if (want <= 0) return
      if (this.#mode !== 'probing') {
        await this.#claimAndSend(want)
        return
      }
      // One probe of a failing target at a time across every instance
      // sharing the database, held until the probe's outcome is recorded:
      // instances that each probed on their own schedule would send a
      // target that is down one probe per instance per interval. One that
      // finds another instance probing looks again at its poll.
      const probe = await this.#outbox.tryExclusive(`probe:${this.target.name}`, () => this.#claimAndSend(want))
      if (!probe.ran) await this.#arm(this.#opts.pollIntervalMs)
    } catch (err) {
      // The database is unavailable (disk full, locked): try again on the poll.
      this.#log.error({ target: this.target.name, err }, 'Claiming deliveries failed.')
      void this.#arm(this.#opts.pollIntervalMs)
    } finally {
      // Another wake may have asked for a rerun while this claim ran (past TypeScript's narrowing).
      const rerun = (this.#claim as ClaimLoop) === 'rerun'
      this.#claim = 'none'
      if (rerun) this.#schedule()
    }
  }

  // Claims up to `want` and starts sending them; a probe (one, while the
  // target is failing) is waited for until its outcome is recorded.
  async #claimAndSend (want: number): Promise<void> {
    const probing = this.#mode === 'probing'
    const claimSeq = this.#outbox.sequence()
    const leaseEnd = Date.now() + this.leaseMs
    const claimed = await this.#outbox.claim(this.target.name, want, this.leaseMs)
    if (probing) {
      // The others, never probed, still give up on time (the probe itself,
      // leased now, goes through the usual verdict).
      const expired = await this.#outbox.expire(this.target.name, Date.now() - this.#opts.retry.giveUpAfterMs)
      if (expired > 0) {
        this.#log.error({ target: this.target.name, expired }, 'Deliveries are dead: gave up while the target was failing.')
        this.#opts.onExpired?.(this.target.name, expired)
      }
    }
    // Stopping, or the target turned failing while this claim ran: what it
    // claimed ahead goes back, as #judgeTarget gave back what was ready, so
    // that only a probe taken in turn goes out.
    if (!this.#active() || (this.#mode === 'probing' && !probing)) {
      await Promise.all(claimed.map((c) => this.#giveBack(c)))
      return
    }
    for (const c of claimed) this.#ready.push({ c, leaseEnd })
    this.#pump()
    if (claimed.length < want) {
      // Caught up, unless a wake is about work this claim came too early to see.
      if (this.#unclaimedFrom !== null && this.#unclaimedFrom <= claimSeq) this.#unclaimedFrom = null
      await this.#arm()
    }
    if (probing) await Promise.all(claimed.map((c) => this.#inflight.get(c.deliveryId)))
  }

  // Sleeps until the next delivery is due, but never longer than the poll
  // interval: the backstop for rows added by another process (the CLI).
  async #arm (delayMs?: number): Promise<void> {
    let delay = delayMs
    if (delay === undefined) {
      const due = await this.#outbox.nextDueAt(this.target.name)
      delay = due === null ? this.#opts.pollIntervalMs : Math.max(0, due - Date.now())
    }
    if (!this.#active()) return
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

  #pump (): void {
    const slots = this.#mode === 'probing' ? 1 : this.target.concurrency
    while (this.#active() && this.#sending < slots && this.#ready.length > 0) {
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
      const body = await this.#bodyOf(c)
      outcome = Buffer.isBuffer(body) ? await deliver(this.#client, { notificationId: c.notificationId, attempt: c.attempt, body }) : body
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
    const d = decide({ outcome, attempt: c.attempt, retrySince: c.retrySince, failures: this.#failures, now: Date.now(), retry: this.#opts.retry })
    this.#judgeTarget(d)
    const { verdict, nextAttemptAt } = d
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
    this.#logOutcome(c, outcome, d, current)
    // A delivery due again (now or after its backoff) is database work: the
    // next claim, or the due-time timer, must see it.
    if (verdict === 'retry' || verdict === 'released') this.wake()
    this.#opts.onOutcome?.(this.target.name, outcome, verdict)
  }

  // Apple's bytes; for a decoded target, its document of them, built a turn
  // later: a fresh delivery starts inside the ingest's request (dispatcher.ts),
  // and Apple's answer must not wait for a document. A body that does not
  // build is an outcome: no request, dead at once (verdict.ts).
  async #bodyOf (c: ClaimedDelivery): Promise<Buffer | DeliveryOutcome> {
    if (this.target.payload === 'apple') return c.body
    await nextTurn()
    try {
      return this.#decoded.get(c)
    } catch (err) {
      const error = `the decoded document cannot be built: ${err instanceof Error ? err.message : String(err)}`
      return { ok: false, statusCode: null, error, retryAfterMs: null, responseExcerpt: null, durationMs: 0, aborted: false, unsendable: true }
    }
  }

  #logOutcome (c: ClaimedDelivery, outcome: DeliveryOutcome, { verdict, nextAttemptAt }: Decision, current: boolean): void {
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
  }

  // What the outcome says of the target. While stopping, the mode stays; the
  // count and the log go on as before.
  #judgeTarget (d: Decision): void {
    if (d.target === 'recovered') {
      this.#log.info({ target: this.target.name, failures: this.#failures }, 'Target answers again: delivering at full speed.')
      if (this.#mode === 'probing') this.#enter('running')
    } else if (d.target === 'failing') {
      this.#log.warn({ target: this.target.name, failures: d.failures }, 'Target is failing: probing it with one delivery at a time until it answers.')
      if (this.#mode === 'running') this.#enter('probing')
      // What was claimed ahead goes back, due at once, no attempt counted.
      for (const { c } of this.#ready.splice(0)) void this.#giveBack(c)
    }
    this.#failures = d.failures
    if (d.probeAt !== null) this.#probeAt = d.probeAt
  }

  // Lets in-flight deliveries finish until the deadline, then aborts them;
  // aborted ones are released (due again at once, attempt kept in history).
  stop (deadlineMs: number): Promise<void> {
    this.#stopped ??= this.#stop(deadlineMs)
    return this.#stopped
  }

  async #stop (deadlineMs: number): Promise<void> {
    this.#enter('stopping')
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
    while (this.#claim !== 'none') await new Promise((resolve) => setImmediate(resolve))
    const waiting = this.#ready.splice(0)
    await Promise.all(waiting.map(({ c }) => this.#giveBack(c)))
    await this.#client.agent.close()
    this.#enter('stopped')
  }
}
