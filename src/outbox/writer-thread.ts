// The outbox's writer: a worker thread that owns the writing connection.
// better-sqlite3 is synchronous, and a durable commit (WAL append + fsync)
// takes milliseconds; on the main thread that would stall every HTTP request
// for its length. Here it stalls nobody: the main thread keeps parsing
// requests while this thread commits, and whatever queued up meanwhile goes
// into the next commit together.
import { parentPort, workerData } from 'node:worker_threads'
import { openDatabase } from '../db/client.ts'
import { GroupCommit } from './group-commit.ts'
import { CLOSE, OPS, type OpName, type Request, type Response, type WriterContext } from './writer-ops.ts'

export interface WriterData {
  path: string
  busyTimeoutMs: number
}

const { path, busyTimeoutMs } = workerData as WriterData
const database = openDatabase(path, { busyTimeoutMs })
const commits = new GroupCommit(database)
const context: WriterContext = { db: database.db, database, stats: () => commits.stats(), move: movable }

// Ordered ops go through the group commit with the durability their entry
// names; unordered ones answer at once from this connection.
function execute (op: OpName, args: unknown[]): unknown {
  const entry = OPS[op]
  const run = entry.run as (w: WriterContext, ...args: unknown[]) => unknown
  if (entry.queue === 'unordered') return run(context, ...args)
  return commits.run(() => run(context, ...args), entry.durability)
}

function close (): void {
  commits.close()
  database.close()
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
  if (op !== CLOSE && !Object.hasOwn(OPS, op)) {
    reply([id, false, { name: 'Error', message: `unknown outbox op ${String(op)}` }])
    return
  }
  const fail = (err: unknown): void => {
    const e = err as { message?: string; code?: string; name?: string }
    reply([id, false, { name: e.name ?? 'Error', message: String(e.message ?? err), ...(e.code !== undefined ? { code: e.code } : {}) }])
  }
  if (op === CLOSE) {
    try {
      close()
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
    const value = execute(op, args)
    if (value instanceof Promise) value.then((v) => reply([id, true, v]), fail)
    else reply([id, true, value])
  } catch (err) {
    fail(err)
  }
}

parentPort!.on('message', (requests: Request[]) => {
  for (const r of requests) handle(r)
})
