// The outbox's writer: a worker thread that owns the writing connection.
// better-sqlite3 is synchronous, and a durable commit (WAL append + fsync)
// takes milliseconds; on the main thread that would stall every HTTP request
// for its length. Here it stalls nobody: the main thread keeps parsing
// requests while this thread commits, and whatever queued up meanwhile goes
// into the next commit together.
import { parentPort, workerData } from 'node:worker_threads'
import { openDatabase } from '../db/client.ts'
import { GroupCommit } from './group-commit.ts'
import * as store from './store.ts'
import * as runs from '../appstore/runs.ts'

export interface WriterData {
  path: string
  busyTimeoutMs: number
}

export type Request = [id: number, op: string, args: unknown[]]
export type Response = [id: number, ok: true, value: unknown] | [id: number, ok: false, error: { message: string; code?: string; name: string }]

const { path, busyTimeoutMs } = workerData as WriterData
const database = openDatabase(path, { busyTimeoutMs })
const commits = new GroupCommit(database)
const db = database.db

// Structured clone turns a Buffer into a plain Uint8Array; SQLite wants a Buffer.
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

// Writes go through the group commit; reads answer at once from this connection.
const ops: Record<string, (...args: any[]) => unknown> = {
  enqueue: (n: store.NewNotification, targets: string[], leases: store.Leases) =>
    commits.run(() => store.enqueue(db, { ...n, body: buf(n.body as Uint8Array) }, targets, Date.now(), leases)),
  // Delivery bookkeeping is relaxed (db/client.ts Durability): a power cut
  // can at worst undo a lease or an outcome, and the delivery is sent again.
  claim: (target: string, limit: number, leaseMs: number) => commits.run(() => {
    const now = Date.now()
    const claimed = store.claimDue(db, target, limit, now, now + leaseMs)
    for (const c of claimed) movable(c.body)
    return claimed
  }, 'relaxed'),
  complete: (a: store.AttemptRecord) => commits.run(() => store.complete(db, a, Date.now()), 'relaxed'),
  scheduleRetry: (a: store.AttemptRecord, at: number) => commits.run(() => store.scheduleRetry(db, a, at, Date.now()), 'relaxed'),
  markDead: (a: store.AttemptRecord) => commits.run(() => store.markDead(db, a, Date.now()), 'relaxed'),
  releaseAttempt: (a: store.AttemptRecord) => commits.run(() => store.releaseAttempt(db, a, Date.now()), 'relaxed'),
  release: (deliveryId: number, fence: number) => commits.run(() => store.release(db, deliveryId, fence, Date.now()), 'relaxed'),
  expire: (target: string, arrivedBefore: number) => commits.run(() => store.expireDue(db, target, arrivedBefore, Date.now()), 'relaxed'),
  reclaimLeases: () => commits.run(() => store.reclaimLeases(db, Date.now())),
  replay: (notificationId: string, targets: string[] | null) => commits.run(() =>
    store.replay(db, notificationId, targets ?? store.targetsOf(db, notificationId), Date.now())),
  probe: () => commits.run(() => store.touchHeartbeat(db, Date.now())),
  quarantine: (row: store.NewQuarantined, caps: store.QuarantineCaps) =>
    commits.run(() => store.quarantineRefused(db, { ...row, body: buf(row.body as Uint8Array) }, caps)),
  findQuarantined: (id: number) => store.findQuarantined(db, id) ?? null,
  markReleased: (id: number, notificationId: string) => commits.run(() => store.markReleased(db, id, notificationId, Date.now())),
  prune: (cutoff: number, limit: number) => commits.run(() => store.pruneDelivered(db, cutoff, limit)),
  nextDueAt: (target: string) => store.nextDueAt(db, target),
  // App Store Server API history runs (backfill, catch-up).
  insertRun: (row: runs.NewHistoryRun) => commits.run(() => runs.insertRun(db, row)),
  updateRun: (id: number, progress: Partial<runs.RunProgress>) => commits.run(() => runs.updateRun(db, id, progress, Date.now())),
  stats: () => commits.stats(),
  // Fault drills and tests: cap the file as a full disk would.
  setMaxPageCount: (pages: number | null) => database.setMaxPageCount(pages),
  close: () => {
    commits.close()
    database.close()
    return null
  }
}

// Replies go back in one message per turn, as requests come in (outbox.ts):
// a message costs about as much CPU on each side as the write it reports.
let outgoing: Response[] = []
// Bodies travel by transfer, not by copy: cloning them was most of the
// cost of a reply.
let transfer: ArrayBuffer[] = []
function movable (body: Buffer): void {
  // Only a buffer that owns all of its memory: never a slice of a shared pool.
  if (body.byteOffset === 0 && body.buffer.byteLength === body.byteLength) transfer.push(body.buffer as ArrayBuffer)
}
function flushReplies (): void {
  const batch = outgoing
  const moved = transfer
  outgoing = []
  transfer = []
  if (batch.length > 0) parentPort!.postMessage(batch, moved)
}
function reply (message: Response): void {
  // Every op of one group commit settles in the same turn, so their replies
  // are all queued as microtasks before this flush runs.
  if (outgoing.push(message) === 1) queueMicrotask(flushReplies)
}

function handle ([id, op, args]: Request): void {
  const fn = ops[op]
  if (fn === undefined) {
    reply([id, false, { name: 'Error', message: `unknown outbox op ${op}` }])
    return
  }
  const fail = (err: unknown): void => {
    const e = err as { message?: string; code?: string; name?: string }
    reply([id, false, { name: e.name ?? 'Error', message: String(e.message ?? err), ...(e.code !== undefined ? { code: e.code } : {}) }])
  }
  if (op === 'close') {
    try {
      fn()
      reply([id, true, null])
    } catch (err) {
      fail(err)
    }
    // After the replies of the last commit (microtasks) have gone out.
    // Nothing keeps this thread alive after its port closes: it exits. Deno's
    // port has no close(); there the main thread's terminate() ends it.
    setImmediate(() => {
      flushReplies()
      if (typeof parentPort!.close === 'function') parentPort!.close()
    })
    return
  }
  try {
    const value = fn(...args)
    if (value instanceof Promise) value.then((v) => reply([id, true, v]), fail)
    else reply([id, true, value])
  } catch (err) {
    fail(err)
  }
}

parentPort!.on('message', (requests: Request[]) => {
  for (const r of requests) handle(r)
})
