// The outbox's durable state on PostgreSQL (issue 16): the same tables,
// columns and indexes as the SQLite schema beside it (schema.ts, whose
// comments say what each column is for), so the code above the storage layer
// sees the same rows whichever engine runs, and `storehook copy` moves a row
// column for column. drizzle builds each table from its dialect's own column
// and index builders, so the declarations are said twice;
// test/pg/schema-pg.test.ts holds the two to each other (names, nullability,
// defaults, indexes). What differs is only what the engine asks:
//   - millisecond timestamps are bigint read as JavaScript numbers (they pass
//     2^31 in 1970, and stay below 2^53 for another 285,000 years);
//   - bodies and certificate chains are bytea, read as Buffers;
//   - ids are identity columns BY DEFAULT, not ALWAYS, so the copy from
//     SQLite can keep each row's id; the busy tables' ids are bigint, as
//     SQLite's integers are 64-bit, and a delivery or attempt id would pass
//     2^31 at about 70 a second for a year;
//   - history_runs.only_failures is a boolean, which SQLite does not have.
import { sql } from 'drizzle-orm'
import { bigint, boolean, customType, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core'
import { statusLiteral, type indexedColumns as sqliteIndexedColumns } from './schema.ts'
import { ALERT_EVENTS, ALERT_MESSAGE_STATUSES, API_ENVIRONMENTS, BODY_ENCODINGS, DELIVERY_STATUSES, HISTORY_RUN_KINDS, NOTIFICATION_SOURCES, VERIFICATION_STATUSES } from './vocabulary.ts'

// drizzle-orm 0.45's pg-core has no bytea column; both clients read bytea as
// a Buffer and send a Buffer as bytea, so the type only names the column.
const bytea = customType<{ data: Buffer, driverData: Buffer }>({ dataType: () => 'bytea' })

const millis = (name: string) => bigint(name, { mode: 'number' })

// The decoded fields (schema.ts indexedColumns), with the same keys: the
// `satisfies` clause fails to compile when one list gains a field the other lacks.
export const indexedColumns = {
  notificationUuid: text('notification_uuid'),
  notificationType: text('notification_type').notNull(),
  subtype: text('subtype'),
  environment: text('environment'),
  bundleId: text('bundle_id'),
  appAppleId: text('app_apple_id'),
  signedDate: millis('signed_date'),
  originalTransactionId: text('original_transaction_id'),
  transactionId: text('transaction_id'),
  productId: text('product_id'),
  appAccountToken: text('app_account_token')
} satisfies Record<keyof typeof sqliteIndexedColumns, unknown>

// Each distinct certificate chain, stored once (issue 15): a V2 body keeps
// its payload and points here, and is compressed against this chain.
export const bodyChains = pgTable('body_chains', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  // Hex SHA-256 of the chain's bytes: how an arriving body finds its row.
  digest: text('digest').notNull(),
  chain: bytea('chain').notNull(),
  firstSeenAt: millis('first_seen_at').notNull()
}, (t) => [
  uniqueIndex('body_chains_digest').on(t.digest)
])

// How a stored body is encoded, and the chain it was compressed against:
// the same two columns on notifications and on quarantine.
const bodyColumns = () => ({
  body: bytea('body').notNull(),
  bodyEncoding: text('body_encoding', { enum: BODY_ENCODINGS }).notNull().default('raw'),
  bodyChainId: integer('body_chain_id').references(() => bodyChains.id)
})

export const notifications = pgTable('notifications', {
  id: text('id').primaryKey(),
  dedupeKey: text('dedupe_key').notNull(),
  receivedAt: millis('received_at').notNull(),
  source: text('source', { enum: NOTIFICATION_SOURCES }).notNull(),
  version: integer('version').notNull(),
  ...indexedColumns,
  verification: text('verification', { enum: VERIFICATION_STATUSES }).notNull(),
  verificationError: text('verification_error'),
  ...bodyColumns()
}, (t) => [
  uniqueIndex('notifications_dedupe_key').on(t.dedupeKey),
  index('notifications_type').on(t.notificationType, t.receivedAt),
  index('notifications_original_transaction_id').on(t.originalTransactionId),
  index('notifications_bundle_id').on(t.bundleId, t.receivedAt),
  index('notifications_environment').on(t.environment, t.receivedAt),
  index('notifications_subtype').on(t.subtype, t.receivedAt),
  index('notifications_verification').on(t.verification, t.receivedAt),
  index('notifications_product_id').on(t.productId, t.receivedAt),
  index('notifications_app_apple_id').on(t.appAppleId, t.receivedAt),
  index('notifications_signed_date').on(t.signedDate),
  index('notifications_transaction_id').on(t.transactionId),
  index('notifications_app_account_token').on(t.appAccountToken).where(sql`app_account_token IS NOT NULL`),
  // Rows copied from SQLite as they were stored, and the few that did not compress (schema.ts).
  index('notifications_raw_body').on(t.id).where(sql`body_encoding = 'raw'`)
])

export const deliveries = pgTable('deliveries', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  notificationId: text('notification_id').notNull().references(() => notifications.id, { onDelete: 'cascade' }),
  target: text('target').notNull(),
  status: text('status', { enum: DELIVERY_STATUSES }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: millis('next_attempt_at').notNull(),
  leaseUntil: millis('lease_until'),
  fence: integer('fence').notNull().default(0),
  retrySince: millis('retry_since').notNull(),
  createdAt: millis('created_at').notNull(),
  updatedAt: millis('updated_at').notNull(),
  deliveredAt: millis('delivered_at'),
  lastStatusCode: integer('last_status_code'),
  lastError: text('last_error')
}, (t) => [
  uniqueIndex('deliveries_notification_target').on(t.notificationId, t.target),
  // The same literal as SQLite's partial index, so a claim's WHERE matches it on both.
  index('deliveries_due').on(t.target, t.nextAttemptAt).where(sql`status = ${statusLiteral('pending')}`),
  index('deliveries_target_status').on(t.target, t.status)
])

export const attempts = pgTable('attempts', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  deliveryId: bigint('delivery_id', { mode: 'number' }).notNull().references(() => deliveries.id, { onDelete: 'cascade' }),
  attempt: integer('attempt').notNull(),
  startedAt: millis('started_at').notNull(),
  durationMs: integer('duration_ms').notNull(),
  statusCode: integer('status_code'),
  error: text('error'),
  responseExcerpt: text('response_excerpt')
}, (t) => [
  index('attempts_delivery').on(t.deliveryId)
])

export const heartbeat = pgTable('heartbeat', {
  id: integer('id').primaryKey(),
  at: millis('at').notNull()
})

export const quarantine = pgTable('quarantine', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  receivedAt: millis('received_at').notNull(),
  code: text('code').notNull(),
  reason: text('reason').notNull(),
  notificationUuid: text('notification_uuid'),
  notificationType: text('notification_type'),
  environment: text('environment'),
  bundleId: text('bundle_id'),
  bytes: integer('bytes').notNull(),
  ...bodyColumns(),
  releasedAt: millis('released_at'),
  releasedAs: text('released_as')
}, (t) => [
  index('quarantine_raw_body').on(t.id).where(sql`body_encoding = 'raw'`)
])

// Kept by PL/pgSQL triggers (drizzle/pg/0001_quarantine_totals.sql), as
// drizzle/0004 keeps SQLite's. bytes is bigint: it sums every row's.
export const quarantineTotals = pgTable('quarantine_totals', {
  id: integer('id').primaryKey(),
  items: integer('items').notNull(),
  bytes: bigint('bytes', { mode: 'number' }).notNull()
})

export const historyRuns = pgTable('history_runs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  kind: text('kind', { enum: HISTORY_RUN_KINDS }).notNull(),
  runKey: text('run_key').notNull(),
  bundleId: text('bundle_id').notNull(),
  environment: text('environment', { enum: API_ENVIRONMENTS }).notNull(),
  startDate: millis('start_date').notNull(),
  endDate: millis('end_date').notNull(),
  onlyFailures: boolean('only_failures').notNull(),
  paginationToken: text('pagination_token'),
  pages: integer('pages').notNull().default(0),
  seen: integer('seen').notNull().default(0),
  added: integer('added').notNull().default(0),
  already: integer('already').notNull().default(0),
  refused: integer('refused').notNull().default(0),
  startedAt: millis('started_at').notNull(),
  updatedAt: millis('updated_at').notNull(),
  finishedAt: millis('finished_at'),
  lastError: text('last_error')
}, (t) => [
  index('history_runs_key').on(t.runKey, t.finishedAt),
  index('history_runs_kind').on(t.kind, t.environment, t.startedAt)
])

// Alert episodes and the messages that tell of them (issue 17; schema.ts).
// The unique partial index is what makes one alert per episode hold across
// instances: the instance whose insert wins is the only one that queues it.
export const alertEpisodes = pgTable('alert_episodes', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  event: text('event', { enum: ALERT_EVENTS }).notNull(),
  subject: text('subject').notNull(),
  openedAt: millis('opened_at').notNull(),
  closedAt: millis('closed_at'),
  facts: text('facts').notNull()
}, (t) => [
  uniqueIndex('alert_episodes_open').on(t.event, t.subject).where(sql`closed_at IS NULL`),
  index('alert_episodes_latest').on(t.event, t.subject, t.openedAt)
])

export const alertMessages = pgTable('alert_messages', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  episodeId: bigint('episode_id', { mode: 'number' }).references(() => alertEpisodes.id, { onDelete: 'cascade' }),
  event: text('event', { enum: ALERT_EVENTS }).notNull(),
  subject: text('subject').notNull(),
  facts: text('facts').notNull(),
  destination: text('destination').notNull(),
  status: text('status', { enum: ALERT_MESSAGE_STATUSES }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: millis('next_attempt_at').notNull(),
  createdAt: millis('created_at').notNull(),
  sentAt: millis('sent_at'),
  lastError: text('last_error')
}, (t) => [
  index('alert_messages_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
  index('alert_messages_created').on(t.createdAt)
])
