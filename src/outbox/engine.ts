// What a storage engine offers the rest of storehook: every write and read
// the program needs, async, in plain rows. SQLite (outbox.ts: a writer thread
// plus a read connection) is the one engine today; another (PostgreSQL)
// implements this same interface, so nothing above it knows which one runs.
// The row types are derived from the schema's tables, but only as the plain
// objects they describe: no driver type appears here.
import { createHash } from 'node:crypto'
import type { GroupCommitStats } from './group-commit.ts'
import type { alertEpisodes, alertMessages, attempts, deliveries, historyRuns, notifications, quarantine } from '../db/schema.ts'
import type { AlertEvent, DeliveryStatus, VerificationStatus } from '../db/vocabulary.ts'

export type { GroupCommitStats }

// How a body is stored (src/outbox/bodies.ts) is the engine's own business:
// rows go in and come out with the bytes as received.
type StoredForm = 'bodyEncoding' | 'bodyChainId'
export type NotificationRow = Omit<typeof notifications.$inferSelect, StoredForm>
export type NewNotification = Omit<typeof notifications.$inferInsert, StoredForm>
export type DeliveryRow = typeof deliveries.$inferSelect
export type AttemptRow = typeof attempts.$inferSelect
export type QuarantineRow = Omit<typeof quarantine.$inferSelect, StoredForm>
// A row as read for a person or a release: a body that can no longer be read
// back (its chain row deleted, its bytes damaged on disk) comes as null with
// the reason, so every view of the row still renders. Never other bytes.
export type Readable<T extends { body: Buffer }> = Omit<T, 'body'> & ({ body: Buffer; bodyError: null } | { body: null; bodyError: string })
export type NewQuarantined = Omit<typeof quarantine.$inferInsert, StoredForm>
export type HistoryRun = typeof historyRuns.$inferSelect
export type NewHistoryRun = Omit<typeof historyRuns.$inferInsert, 'id'>
export type RunProgress = Pick<HistoryRun, 'paginationToken' | 'pages' | 'seen' | 'added' | 'already' | 'refused' | 'finishedAt' | 'lastError'>

// The one rule every engine stores by, written once.
// A notification's dedupe key: a V2 notification's notificationUUID (Apple's
// retries of it are one notification), a V1 body's digest (it has no id).
export function dedupeKeyOf (notificationUuid: string | null, body: Uint8Array): string {
  return notificationUuid !== null ? v2DedupeKey(notificationUuid) : `v1:${createHash('sha256').update(body).digest('hex')}`
}

export const v2DedupeKey = (notificationUuid: string): string => notificationUuid

export interface EnqueueResult {
  id: string
  duplicate: boolean
  // Targets that got a new delivery row: their workers are woken after the commit.
  targets: string[]
  // Delivery rows written already leased to the caller, as a claim would
  // return them but for the body, which the caller has in memory: a target
  // with a free slot gets its fresh notification without a claim of its own.
  // Empty for a duplicate.
  leased: LeasedDelivery[]
}

export type LeasedDelivery = Omit<ClaimedDelivery, 'body' | 'facts'>

// What a decoded target's document says of its notification besides the
// body (src/decoded/document.ts): written with the row, never changed.
export type NotificationFacts = Pick<NotificationRow, 'source' | 'receivedAt' | 'verification' | 'verificationError'>

// Targets whose new delivery rows are leased at once, and until when.
export type Leases = ReadonlyArray<readonly [target: string, leaseUntil: number]>

export interface ClaimedDelivery {
  deliveryId: number
  notificationId: string
  target: string
  attempt: number
  fence: number
  retrySince: number
  body: Buffer
  facts: NotificationFacts
}

export interface AttemptRecord {
  deliveryId: number
  fence: number
  attempt: number
  startedAt: number
  durationMs: number
  statusCode: number | null
  error: string | null
  responseExcerpt: string | null
}

export interface QuarantineCaps {
  maxItems: number
  maxBytes: number
}

export type QuarantineSummary = Omit<QuarantineRow, 'body'>

export interface NotificationFilter {
  type?: string
  subtype?: string
  environment?: string
  bundleId?: string
  originalTransactionId?: string
  verification?: VerificationStatus
  deliveryStatus?: DeliveryStatus
  target?: string
  since?: number
  until?: number
}

export type NotificationSummary = Omit<NotificationRow, 'body' | 'dedupeKey'>
export type NotificationWithHistory = { notification: Readable<NotificationRow>; deliveries: Array<DeliveryRow & { history: AttemptRow[] }> }

export interface TargetHealth {
  pending: number
  dead: number
  delivered: number
  oldestPendingAt: number | null
  lastSuccessAt: number | null
  lastErrorAt: number | null
  lastError: string | null
}

// A target's health from what each engine read: its delivery counts, its
// last success, and its latest failure still standing (absent: none).
export function targetHealthOf (
  counts: { pending?: number | null; dead?: number | null; delivered?: number | null; oldest?: number | null } | undefined,
  lastSuccessAt: number | null | undefined,
  failure: { at: number; error: string | null } | undefined
): TargetHealth {
  return {
    pending: counts?.pending ?? 0,
    dead: counts?.dead ?? 0,
    delivered: counts?.delivered ?? 0,
    oldestPendingAt: counts?.oldest ?? null,
    lastSuccessAt: lastSuccessAt ?? null,
    lastErrorAt: failure?.at ?? null,
    lastError: failure?.error ?? null
  }
}

export interface Overview {
  lastReceived: Array<{ environment: string | null; at: number; type: string }>
  last24h: Array<{ environment: string | null; verification: string; n: number }>
}

// The outbox gauges of /metrics, read in one go.
export interface Gauges {
  pending: Array<{ target: string; n: number; oldest: number }>
  dead: Array<{ target: string; n: number }>
  lastReceived: Array<{ environment: string | null; at: number }>
  quarantined: number
}

// One stored notification and the state of its delivery to each target.
export interface DeliveryState {
  name: string
  status: DeliveryStatus
  attempts: number
  lastStatusCode: number | null
  lastError: string | null
}

// Where the compaction pass is: the last row id it looked at in each table,
// null before the first, DONE past the last.
export const DONE = 'done'
export interface CompactionCursor {
  notificationsAfter: string | null
  quarantineAfter: number | typeof DONE | null
}
export const COMPACTION_START: CompactionCursor = { notificationsAfter: null, quarantineAfter: null }
export interface CompactionBatch {
  scanned: number
  rewritten: number
  cursor: CompactionCursor
}

// Alerts (issue 17). Facts are names and numbers, stored as a JSON object.
export type AlertFacts = Record<string, string | number | boolean | null>
export type AlertEpisode = Omit<typeof alertEpisodes.$inferSelect, 'facts'> & { facts: AlertFacts }
export type AlertMessage = Omit<typeof alertMessages.$inferSelect, 'facts'> & { facts: AlertFacts }

// An alert to queue: its event, what it is about, what it says, and the
// destinations (by name) that get it.
export interface AlertEdge {
  event: AlertEvent
  subject: string
  facts: AlertFacts
  destinations: readonly string[]
}

// What the sender records of one attempt: sent, to try again at a time, or given up.
export type AlertOutcome =
  | { status: 'sent' }
  | { status: 'pending'; nextAttemptAt: number; error: string }
  | { status: 'failed'; error: string }

// The facts column read back. It came from storehook, but the database is
// read as hostile all the same: anything but a flat object of primitives
// becomes nothing rather than a crash of the monitor or a page.
export function alertFactsOf (text: string): AlertFacts {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return {}
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {}
  const out: AlertFacts = {}
  for (const [k, v] of Object.entries(parsed)) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v
  }
  return out
}

// Writes, in the order they were asked for: each one resolves once it is
// committed (durably or not: the engine's table says which), and an op
// numbered n (sequence()) sees every write numbered below n.
export interface OrderedWrites {
  // `leases` are the targets the caller has reserved a slot for: their rows are written already leased.
  enqueue: (n: NewNotification, targets: readonly string[], leases: Leases) => Promise<EnqueueResult>
  claim: (target: string, limit: number, leaseMs: number) => Promise<ClaimedDelivery[]>
  complete: (a: AttemptRecord) => Promise<boolean>
  scheduleRetry: (a: AttemptRecord, nextAttemptAt: number) => Promise<boolean>
  markDead: (a: AttemptRecord) => Promise<boolean>
  releaseAttempt: (a: AttemptRecord) => Promise<boolean>
  release: (deliveryId: number, fence: number) => Promise<boolean>
  expire: (target: string, arrivedBefore: number) => Promise<number>
  reclaimLeases: () => Promise<number>
  // Replays to `targets`, or to every target the notification already has.
  replay: (notificationId: string, targets?: readonly string[]) => Promise<string[]>
  // A write that proves the storage takes writes (/readyz).
  probe: () => Promise<void>
  prune: (cutoff: number, limit: number) => Promise<number>
  // Rewrites up to `limit` bodies still stored as received (rows written
  // before bodies were compressed) in the compressed form; see compaction.ts.
  compactBodies: (cursor: CompactionCursor, limit: number) => Promise<CompactionBatch>
  quarantine: (row: NewQuarantined, caps: QuarantineCaps) => Promise<{ id: number; dropped: number }>
  markReleased: (id: number, notificationId: string) => Promise<boolean>
  insertRun: (row: NewHistoryRun) => Promise<number>
  updateRun: (id: number, progress: Partial<RunProgress>) => Promise<boolean>
  // Opens an episode of `edge.event` about `edge.subject` and queues its
  // alert to each destination, in one transaction; null (and nothing
  // queued) when one is open already, whoever opened it.
  openAlert: (edge: AlertEdge, at: number) => Promise<number | null>
  // Closes the open episode of (event, subject) and queues `tell` (the
  // end's own alert, or none), in one transaction; false when none was open.
  closeAlert: (event: AlertEvent, subject: string, tell: AlertEdge | null, at: number) => Promise<boolean>
  // Queues an alert of no episode (the test alert).
  queueAlert: (edge: AlertEdge, at: number) => Promise<number[]>
  // Up to `limit` due alert messages, leased for `leaseMs` (attempts counted
  // now: it is the fence a settle must match).
  claimAlerts: (limit: number, leaseMs: number) => Promise<AlertMessage[]>
  settleAlert: (id: number, attempts: number, outcome: AlertOutcome) => Promise<boolean>
  // Deletes alert messages settled before `cutoff` and episodes closed
  // before it (with their messages): the history as far back as RETENTION_DAYS.
  pruneAlerts: (cutoff: number) => Promise<number>
}

// Reads that do not wait behind queued writes: they answer from what is
// committed now, so a write still queued is not seen by them.
export interface UnorderedReads {
  findQuarantined: (id: number) => Promise<Readable<QuarantineRow> | null>
  nextDueAt: (target: string) => Promise<number | null>
  listNotifications: (filter: NotificationFilter, limit: number, cursor: string | null) => Promise<{ items: Array<NotificationSummary & { deliveries: DeliveryRow[] }>; nextCursor: string | null }>
  getNotification: (id: string) => Promise<NotificationWithHistory | null>
  targetHealth: (target: string) => Promise<TargetHealth>
  matchingIds: (filter: NotificationFilter, max: number) => Promise<string[]>
  overview: (now: number) => Promise<Overview>
  hourlyCounts: (now: number, hours?: number) => Promise<Array<{ hour: number; n: number }>>
  attentionCounts: () => Promise<{ dead: number; quarantined: number }>
  listQuarantine: (limit: number, beforeId: number | null) => Promise<QuarantineSummary[]>
  quarantineSize: () => Promise<{ items: number; bytes: number }>
  gauges: () => Promise<Gauges>
  // The newest notification received for this app and environment (catch-up's starting point).
  lastReceivedAt: (bundleId: string, environment: string) => Promise<number | null>
  // A notification by its Apple notificationUUID, or else the newest TEST one
  // of `environment` received since `since`; with its deliveries.
  findTestNotification: (notificationUuid: string | null, environment: string, since: number) => Promise<{ id: string; deliveries: DeliveryState[] } | null>
  unfinishedRun: (runKey: string) => Promise<HistoryRun | null>
  lastCaughtUpTo: (bundleId: string, environment: string) => Promise<number | null>
  lastCatchUps: () => Promise<HistoryRun[]>
  // Schema changes this program knows and the storage has not applied (0 when up to date).
  pendingMigrations: () => Promise<number>
  sizeBytes: () => Promise<number>
  // The latest episode of each (event, subject), open or closed.
  alertEpisodes: () => Promise<AlertEpisode[]>
  // Alert messages, newest first.
  alertHistory: (limit: number) => Promise<AlertMessage[]>
  // Deliveries to `target` marked dead after `since`.
  deadSince: (target: string, since: number) => Promise<number>
  // Payloads quarantined after `since`.
  quarantinedSince: (since: number) => Promise<number>
  // When Apple last posted a notification of this environment to storehook
  // itself (the webhook: not one a catch-up or backfill fetched), or null.
  lastPostedAt: (environment: string) => Promise<number | null>
}

// What tryExclusive gives back: the job's value, or that it did not run
// because another instance holds the same job now.
export type Exclusive<T> = { ran: true; value: T } | { ran: false }

export interface Storage extends OrderedWrites, UnorderedReads {
  // Runs `fn` unless another instance on the same storage is running the
  // job of the same name now (then it skips: { ran: false }). For
  // background work that one instance at a time is enough for (retention,
  // compaction, catch-up). SQLite: one process owns the file, so it runs.
  tryExclusive: <T>(name: string, fn: () => Promise<T>) => Promise<Exclusive<T>>
  // The number the next ordered write will get.
  sequence: () => number
  // Listeners get the targets with new rows to claim, and the op number from which a claim sees them.
  onEnqueued: (fn: (targets: readonly string[], seenFrom: number) => void) => () => void
  // Counters of the commits so far (tests, benches).
  stats: () => Promise<GroupCommitStats>
  // Commits what is queued and closes. Safe to call twice.
  close: () => Promise<void>
}
