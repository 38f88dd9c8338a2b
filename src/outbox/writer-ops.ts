// The SQLite engine's writer operations, one table: each names the function
// the writer thread runs, how durable its commit is, and how the main thread
// sends it. The main thread's calls (outbox.ts) and the writer's dispatch
// (writer-thread.ts) both follow from it, so a mistyped op name or argument
// is a compile error, and no op's durability is decided anywhere else.
import type { Database_, Db, Durability } from '../db/client.ts'
import type { AlertEdge, AlertOutcome, AttemptRecord, CompactionCursor, GroupCommitStats, Leases, NewHistoryRun, NewNotification, NewQuarantined, QuarantineCaps, RunProgress } from './engine.ts'
import * as alerts from './alerts.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import * as runs from './runs.ts'
import * as store from './store.ts'

// What an op runs with, in the writer thread.
export interface WriterContext {
  db: Db
  database: Database_
  stats: () => GroupCommitStats
  // A body to hand back by transfer rather than by copy.
  move: (body: Buffer) => void
}

// 'now': sent to the writer at the end of this turn of the event loop.
// 'later': waits OUTCOME_DELAY_MS for company (outbox.ts): nobody waits on
// it but a worker's bookkeeping.
export type Batching = 'now' | 'later'

// Goes through the group commit, in the order asked for.
export interface OrderedOp<A extends unknown[], R> {
  readonly queue: 'ordered'
  readonly durability: Durability
  readonly batching: Batching
  readonly run: (w: WriterContext, ...args: A) => R
}

// Answers at once from the writer's connection, ahead of writes still queued.
export interface UnorderedOp<A extends unknown[], R> {
  readonly queue: 'unordered'
  readonly batching: 'now'
  readonly run: (w: WriterContext, ...args: A) => R
}

const ordered = <A extends unknown[], R>(durability: Durability, batching: Batching, run: (w: WriterContext, ...args: A) => R): OrderedOp<A, R> =>
  ({ queue: 'ordered', durability, batching, run })
const unordered = <A extends unknown[], R>(run: (w: WriterContext, ...args: A) => R): UnorderedOp<A, R> =>
  ({ queue: 'unordered', batching: 'now', run })

// Structured clone turns a Buffer into a plain Uint8Array; SQLite wants a Buffer.
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

// Delivery bookkeeping is relaxed (db/client.ts Durability): a power cut can
// at worst undo a lease or an outcome, and the delivery is sent again.
export const OPS = {
  enqueue: ordered('durable', 'now', (w, n: NewNotification, targets: readonly string[], leases: Leases) =>
    store.enqueue(w.db, { ...n, body: buf(n.body as Uint8Array) }, targets, Date.now(), leases)),
  claim: ordered('relaxed', 'now', (w, target: string, limit: number, leaseMs: number) => {
    const now = Date.now()
    const claimed = store.claimDue(w.db, target, limit, now, now + leaseMs)
    for (const c of claimed) w.move(c.body)
    return claimed
  }),
  complete: ordered('relaxed', 'later', (w, a: AttemptRecord) => store.complete(w.db, a, Date.now())),
  scheduleRetry: ordered('relaxed', 'later', (w, a: AttemptRecord, at: number) => store.scheduleRetry(w.db, a, at, Date.now())),
  markDead: ordered('relaxed', 'later', (w, a: AttemptRecord) => store.markDead(w.db, a, Date.now())),
  releaseAttempt: ordered('relaxed', 'later', (w, a: AttemptRecord) => store.releaseAttempt(w.db, a, Date.now())),
  release: ordered('relaxed', 'now', (w, deliveryId: number, fence: number) => store.release(w.db, deliveryId, fence, Date.now())),
  expire: ordered('relaxed', 'now', (w, target: string, arrivedBefore: number) => store.expireDue(w.db, target, arrivedBefore, Date.now())),
  reclaimLeases: ordered('durable', 'now', (w) => store.reclaimLeases(w.db, Date.now())),
  replay: ordered('durable', 'now', (w, notificationId: string, targets: readonly string[] | null) =>
    store.replay(w.db, notificationId, targets ?? store.targetsOf(w.db, notificationId), Date.now())),
  probe: ordered('durable', 'now', (w) => store.touchHeartbeat(w.db, Date.now())),
  quarantine: ordered('durable', 'now', (w, row: NewQuarantined, caps: QuarantineCaps) =>
    store.quarantineRefused(w.db, { ...row, body: buf(row.body as Uint8Array) }, caps)),
  markReleased: ordered('durable', 'now', (w, id: number, notificationId: string) => store.markReleased(w.db, id, notificationId, Date.now())),
  prune: ordered('durable', 'now', (w, cutoff: number, limit: number) => store.pruneDelivered(w.db, cutoff, limit)),
  // Relaxed: a rewrite a power cut undoes leaves the row as it was, readable.
  compactBodies: ordered('relaxed', 'now', (w, cursor: CompactionCursor, limit: number) => store.compactBodies(w.db, cursor, limit, Date.now())),
  // App Store Server API history runs (backfill, catch-up).
  insertRun: ordered('durable', 'now', (w, row: NewHistoryRun) => runs.insertRun(w.db, row)),
  updateRun: ordered('durable', 'now', (w, id: number, progress: Partial<RunProgress>) => runs.updateRun(w.db, id, progress, Date.now())),
  // Alerts (issue 17): an episode edge and its messages are durable, as a
  // restart must neither repeat nor forget one; the sender's bookkeeping is
  // relaxed like a delivery's (a lost outcome sends an alert twice, never none).
  openAlert: ordered('durable', 'now', (w, edge: AlertEdge, at: number) => alerts.openAlert(w.db, edge, at)),
  closeAlert: ordered('durable', 'now', (w, event: AlertEvent, subject: string, tell: AlertEdge | null, at: number) => alerts.closeAlert(w.db, event, subject, tell, at)),
  queueAlert: ordered('durable', 'now', (w, edge: AlertEdge, at: number) => alerts.queueAlert(w.db, edge, at)),
  claimAlerts: ordered('relaxed', 'now', (w, limit: number, leaseMs: number) => {
    const now = Date.now()
    return alerts.claimAlerts(w.db, limit, now, now + leaseMs)
  }),
  pruneAlerts: ordered('durable', 'now', (w, cutoff: number) => alerts.pruneAlerts(w.db, cutoff)),
  settleAlert: ordered('relaxed', 'now', (w, id: number, attempts: number, outcome: AlertOutcome) => alerts.settleAlert(w.db, id, attempts, outcome, Date.now())),
  findQuarantined: unordered((w, id: number) => store.findQuarantined(w.db, id) ?? null),
  nextDueAt: unordered((w, target: string) => store.nextDueAt(w.db, target)),
  stats: unordered((w) => w.stats()),
  // Fault drills and tests: cap the file as a full disk would.
  setMaxPageCount: unordered((w, pages: number | null) => w.database.setMaxPageCount(pages))
}

export type OpName = keyof typeof OPS
export type OrderedOpName = { [K in OpName]: typeof OPS[K]['queue'] extends 'ordered' ? K : never }[OpName]
export type UnorderedOpName = Exclude<OpName, OrderedOpName>
export type ArgsOf<K extends OpName> = typeof OPS[K]['run'] extends (w: WriterContext, ...args: infer A) => unknown ? A : never
export type ResultOf<K extends OpName> = Awaited<ReturnType<typeof OPS[K]['run']>>

// The one request that is not an op: the writer commits what is queued and ends.
export const CLOSE = 'close'
export type Request = [id: number, op: OpName | typeof CLOSE, args: unknown[]]
export type Response = [id: number, ok: true, value: unknown] | [id: number, ok: false, error: { message: string; code?: string; name: string }]
