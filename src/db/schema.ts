// The outbox's durable state. Every fact a restart needs (status, attempt
// count, next attempt time, lease, fencing token) lives in a row, never in memory.
import { sql, type SQL } from 'drizzle-orm'
import { blob, index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import { ALERT_EVENTS, ALERT_MESSAGE_STATUSES, API_ENVIRONMENTS, BODY_ENCODINGS, DELIVERY_STATUSES, HISTORY_RUN_KINDS, NOTIFICATION_SOURCES, VERIFICATION_STATUSES, type DeliveryStatus } from './vocabulary.ts'

// The fields storehook decodes from a payload and indexes (src/apple/payload.ts
// returns exactly these, typed from them). Everything else follows from this
// list: the ingest spreads the decoder's object into the row, the insert's
// placeholders and the summaries are derived from the table's columns. A new
// indexed field is a column here, its migration and a line in the decoder.
export const indexedColumns = {
  notificationUuid: text('notification_uuid'),
  notificationType: text('notification_type').notNull(),
  subtype: text('subtype'),
  environment: text('environment'),
  bundleId: text('bundle_id'),
  appAppleId: text('app_apple_id'),
  signedDate: integer('signed_date'),
  originalTransactionId: text('original_transaction_id'),
  transactionId: text('transaction_id'),
  productId: text('product_id'),
  appAccountToken: text('app_account_token')
}

// Each distinct certificate chain a stored body was compressed against
// (src/outbox/body-codec.ts), once: the JWS header as sent, from which the
// pieces a body refers to are derived. Apple has a handful (a leaf rotated about
// once a year, Production and Sandbox); rows are never deleted, since a body
// stored against one needs it to be read. Bounded by src/outbox/bodies.ts.
export const bodyChains = sqliteTable('body_chains', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  // Hex SHA-256 of the chain bytes: how a body's chain is found on first sight.
  digest: text('digest').notNull(),
  chain: blob('chain', { mode: 'buffer' }).notNull(),
  firstSeenAt: integer('first_seen_at').notNull()
}, (t) => [
  uniqueIndex('body_chains_digest').on(t.digest)
])

// How a row's body column is stored: rows written before drizzle/0005 are
// 'raw' (the default) and stay readable as they are.
const storedBody = () => ({
  bodyEncoding: text('body_encoding', { enum: BODY_ENCODINGS }).notNull().default('raw'),
  bodyChainId: integer('body_chain_id').references(() => bodyChains.id)
})

export const notifications = sqliteTable('notifications', {
  // UUIDv7: unique across databases, sent as X-Storehook-Notification-Id, and
  // ordered by arrival, so the primary key doubles as the time index.
  id: text('id').primaryKey(),
  // V2: Apple's notificationUUID; V1 has none, so the SHA-256 of the body stands in.
  dedupeKey: text('dedupe_key').notNull(),
  receivedAt: integer('received_at').notNull(),
  source: text('source', { enum: NOTIFICATION_SOURCES }).notNull(),
  version: integer('version').notNull(),
  ...indexedColumns,
  verification: text('verification', { enum: VERIFICATION_STATUSES }).notNull(),
  verificationError: text('verification_error'),
  // The exact bytes Apple sent, as body_encoding says they are stored:
  // forwarded as they were received, never re-serialised.
  body: blob('body', { mode: 'buffer' }).notNull(),
  ...storedBody()
}, (t) => [
  uniqueIndex('notifications_dedupe_key').on(t.dedupeKey),
  index('notifications_type').on(t.notificationType, t.receivedAt),
  index('notifications_original_transaction_id').on(t.originalTransactionId),
  index('notifications_bundle_id').on(t.bundleId, t.receivedAt),
  index('notifications_environment').on(t.environment, t.receivedAt),
  // Low-cardinality keys lead with the key and end with the arrival time, so
  // each insert lands at the right edge of its key's run: a few hot pages per
  // commit, not one random page per row. transaction_id grows over time at
  // Apple, and app_account_token is absent for apps that do not set one.
  index('notifications_subtype').on(t.subtype, t.receivedAt),
  index('notifications_verification').on(t.verification, t.receivedAt),
  index('notifications_product_id').on(t.productId, t.receivedAt),
  index('notifications_app_apple_id').on(t.appAppleId, t.receivedAt),
  index('notifications_signed_date').on(t.signedDate),
  index('notifications_transaction_id').on(t.transactionId),
  index('notifications_app_account_token').on(t.appAccountToken).where(sql`app_account_token IS NOT NULL`),
  // What the compaction pass (src/outbox/compaction.ts) still has to look at:
  // rows from before drizzle/0005, and the few that did not compress. The
  // body comes before body_encoding in the record, so without this index
  // finding them would read every body in the file.
  index('notifications_raw_body').on(t.id).where(sql`body_encoding = 'raw'`)
])

// A delivery status for hand-written SQL, as a literal rather than a bound
// parameter: the text stays what it always was (the partial index below is
// declared with it, and the planner matches a query to that index by its
// text), while the value is checked against the vocabulary. The union holds
// no quote, so nothing can escape the literal.
export const statusLiteral = (status: DeliveryStatus): SQL => sql.raw(`'${status}'`)

export const deliveries = sqliteTable('deliveries', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  notificationId: text('notification_id').notNull().references(() => notifications.id, { onDelete: 'cascade' }),
  target: text('target').notNull(),
  // "In flight" is a pending row whose lease has not expired.
  status: text('status', { enum: DELIVERY_STATUSES }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  // A claim moves next_attempt_at to the lease's end, so an expired lease is
  // simply due again: no separate reaper is needed.
  nextAttemptAt: integer('next_attempt_at').notNull(),
  leaseUntil: integer('lease_until'),
  // Bumped on every claim and release: a result is recorded only if the
  // fence it was claimed with is still current.
  fence: integer('fence').notNull().default(0),
  // When the give-up clock started: arrival, or the last replay.
  retrySince: integer('retry_since').notNull(),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  deliveredAt: integer('delivered_at'),
  lastStatusCode: integer('last_status_code'),
  lastError: text('last_error')
}, (t) => [
  uniqueIndex('deliveries_notification_target').on(t.notificationId, t.target),
  index('deliveries_due').on(t.target, t.nextAttemptAt).where(sql`status = ${statusLiteral('pending')}`),
  index('deliveries_target_status').on(t.target, t.status)
])

export const attempts = sqliteTable('attempts', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  deliveryId: integer('delivery_id').notNull().references(() => deliveries.id, { onDelete: 'cascade' }),
  attempt: integer('attempt').notNull(),
  startedAt: integer('started_at').notNull(),
  durationMs: integer('duration_ms').notNull(),
  statusCode: integer('status_code'),
  error: text('error'),
  // The first KB of the target's answer: enough to see why it refused.
  responseExcerpt: text('response_excerpt')
}, (t) => [
  index('attempts_delivery').on(t.deliveryId)
])

// One row, rewritten by /readyz: the cheapest real proof that a write reaches the disk.
export const heartbeat = sqliteTable('heartbeat', {
  id: integer('id').primaryKey(),
  at: integer('at').notNull()
})

// Refused V2 payloads that were well-formed JWS, kept so that an operator who
// finds their own misconfiguration (a missing bundle ID, a wrong root) can
// release them into the outbox. Capped in count and bytes, oldest dropped first.
export const quarantine = sqliteTable('quarantine', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  receivedAt: integer('received_at').notNull(),
  code: text('code').notNull(),
  reason: text('reason').notNull(),
  notificationUuid: text('notification_uuid'),
  notificationType: text('notification_type'),
  environment: text('environment'),
  bundleId: text('bundle_id'),
  // What the sender sent, counted before compression: the caps bound what a
  // sender controls, whatever it compresses to.
  bytes: integer('bytes').notNull(),
  body: blob('body', { mode: 'buffer' }).notNull(),
  ...storedBody(),
  releasedAt: integer('released_at'),
  releasedAs: text('released_as')
}, (t) => [
  index('quarantine_raw_body').on(t.id).where(sql`body_encoding = 'raw'`)
])

// Running totals of the quarantine, one row, kept by triggers on every insert
// and delete (drizzle/0004): the cap check on each refused payload reads one
// row instead of the whole table, and holds whoever writes (server, CLI).
export const quarantineTotals = sqliteTable('quarantine_totals', {
  id: integer('id').primaryKey(),
  items: integer('items').notNull(),
  bytes: integer('bytes').notNull()
})

// App Store Server API history runs: `storehook backfill` and the server's
// automatic catch-up. One row per run, rewritten after every page, so an
// interrupted run resumes from its last paginationToken and the dashboard,
// the admin API and /metrics can show what the last catch-up found.
export const historyRuns = sqliteTable('history_runs', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  kind: text('kind', { enum: HISTORY_RUN_KINDS }).notNull(),
  // Identifies "the same arguments": a backfill with the same key resumes an unfinished run.
  runKey: text('run_key').notNull(),
  bundleId: text('bundle_id').notNull(),
  environment: text('environment', { enum: API_ENVIRONMENTS }).notNull(),
  startDate: integer('start_date').notNull(),
  endDate: integer('end_date').notNull(),
  onlyFailures: integer('only_failures', { mode: 'boolean' }).notNull(),
  // The token for the next page to fetch; null before the first page.
  paginationToken: text('pagination_token'),
  pages: integer('pages').notNull().default(0),
  seen: integer('seen').notNull().default(0),
  added: integer('added').notNull().default(0),
  already: integer('already').notNull().default(0),
  refused: integer('refused').notNull().default(0),
  startedAt: integer('started_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  // Null while running or interrupted.
  finishedAt: integer('finished_at'),
  lastError: text('last_error')
}, (t) => [
  index('history_runs_key').on(t.runKey, t.finishedAt),
  index('history_runs_kind').on(t.kind, t.environment, t.startedAt)
])

// Alert episodes (issue 17): a condition the operator is told about, from
// when it started (opened_at) to when it ended (closed_at, null while it
// lasts). At most one OPEN episode per event and subject (a target's name,
// an environment): the unique partial index makes opening one a race that
// exactly one writer wins, so with several instances on one database only
// the winner queues the alert, and a restart finds the episode still open.
export const alertEpisodes = sqliteTable('alert_episodes', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  event: text('event', { enum: ALERT_EVENTS }).notNull(),
  subject: text('subject').notNull(),
  openedAt: integer('opened_at').notNull(),
  closedAt: integer('closed_at'),
  // What was known when it opened (a JSON object of names and numbers, never a URL or secret).
  facts: text('facts').notNull()
}, (t) => [
  uniqueIndex('alert_episodes_open').on(t.event, t.subject).where(sql`closed_at IS NULL`),
  index('alert_episodes_latest').on(t.event, t.subject, t.openedAt)
])

// One alert to one destination: queued in the same transaction as the
// episode edge it tells of, sent by the alert sender with retries and
// backoff like a delivery. The destination is its configured name, never
// its URL (Slack and Discord URLs are their own tokens).
export const alertMessages = sqliteTable('alert_messages', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  episodeId: integer('episode_id').references(() => alertEpisodes.id, { onDelete: 'cascade' }),
  event: text('event', { enum: ALERT_EVENTS }).notNull(),
  subject: text('subject').notNull(),
  facts: text('facts').notNull(),
  destination: text('destination').notNull(),
  status: text('status', { enum: ALERT_MESSAGE_STATUSES }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  // A claim moves it to the lease's end, as deliveries do.
  nextAttemptAt: integer('next_attempt_at').notNull(),
  createdAt: integer('created_at').notNull(),
  sentAt: integer('sent_at'),
  lastError: text('last_error')
}, (t) => [
  index('alert_messages_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
  index('alert_messages_created').on(t.createdAt)
])
