// storehook's closed sets of values, each written once. The drizzle schema
// types its columns with them, the routes' JSON schemas and the dashboard's
// filters list them, the metrics name their label values after them, and the
// code that decides compares against their union types, so a misspelt value
// is a compile error rather than a filter that silently matches nothing.
// It lives under src/db/ and imports nothing because the storage layer, which
// may not import from the layers above it, needs it as much as they do.
// Apple's documented types and subtypes (metrics labels) are a separate list:
// src/apple/vocabulary.ts.

// A delivery's state. "In flight" is not a status: it is a pending row whose
// lease has not expired.
export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead'] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

// What the ingest's policy (src/ingest/policy.ts) concluded about a stored
// notification's signature or V1 password.
export const VERIFICATION_STATUSES = ['verified', 'unverified', 'unchecked'] as const
export type VerificationStatus = (typeof VERIFICATION_STATUSES)[number]

// How a notification reached the ingest.
export const NOTIFICATION_SOURCES = ['webhook', 'backfill', 'catch-up', 'quarantine'] as const
export type NotificationSource = (typeof NOTIFICATION_SOURCES)[number]

// What a target receives (src/config.ts): Apple's exact bytes, or storehook's
// decoded document of them (src/decoded/document.ts), signed by storehook.
export const TARGET_PAYLOADS = ['apple', 'decoded'] as const
export type TargetPayload = (typeof TARGET_PAYLOADS)[number]

// Apple's environments as Apple documents them (test/unit/vocabulary.test.ts
// checks them against Apple's library). A stored notification keeps whatever
// environment its payload named, so the column is not limited to these.
export const ENVIRONMENTS = ['Production', 'Sandbox', 'Xcode', 'LocalTesting'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

// The environments the App Store Server API serves (backfill, catch-up, test
// notifications); Xcode and LocalTesting exist only on a developer's machine.
export const API_ENVIRONMENTS = ['Production', 'Sandbox'] as const satisfies readonly Environment[]
export type ApiEnvironment = (typeof API_ENVIRONMENTS)[number]

// A history run (the history_runs table): `storehook backfill`, or the
// server's automatic catch-up at start and then periodically.
export const CATCH_UP_KINDS = ['catch-up-start', 'catch-up-periodic'] as const
export type CatchUpKind = (typeof CATCH_UP_KINDS)[number]
export const HISTORY_RUN_KINDS = ['backfill', ...CATCH_UP_KINDS] as const
export type HistoryRunKind = (typeof HISTORY_RUN_KINDS)[number]

// What became of a notification the ingest decoded (the
// storehook_notifications_received_total metric's `outcome` label).
export const RECEIVE_OUTCOMES = ['stored', 'duplicate', 'refused'] as const
export type ReceiveOutcome = (typeof RECEIVE_OUTCOMES)[number]

// A delivery attempt's verdict (the storehook_deliveries_total metric's
// `outcome` label); `released` is an attempt cut short by shutdown.
export const ATTEMPT_OUTCOMES = ['delivered', 'retry', 'dead', 'released'] as const
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number]

// How a stored body is encoded (src/outbox/body-codec.ts): as received;
// zlib (deflate with its Adler-32 check); or its certificate chain's
// occurrences referenced and the rest in zlib. 'deflate' and 'deflate-chain'
// are the same without the check, as the first version wrote them: still
// read, no longer written.
export const BODY_ENCODINGS = ['raw', 'deflate', 'deflate-chain', 'zlib', 'zlib-chain'] as const
export type BodyEncoding = (typeof BODY_ENCODINGS)[number]

// The alerts storehook sends its operator (issue 17): the `event` field of
// every alert, named as SPEC.md names them. `test` is the one sent on
// request (dashboard button, `storehook alert-test`).
export const ALERT_EVENTS = [
  'target.failing', 'target.recovered', 'deliveries.dead', 'apple.silent', 'apple.resumed', 'quarantine.received',
  'catchup.found', 'storage.failing', 'storage.recovered', 'tls.expiring', 'appstore.rejected', 'test'
] as const
export type AlertEvent = (typeof ALERT_EVENTS)[number]

// How an alert destination wants its message (src/alerts/messages.ts).
export const ALERT_FORMATS = ['slack', 'discord', 'json', 'email'] as const
export type AlertFormat = (typeof ALERT_FORMATS)[number]

// An alert message's state: waiting for its (next) attempt, accepted by its
// destination, or given up after ALERT_GIVE_UP_AFTER_MS of refusals.
export const ALERT_MESSAGE_STATUSES = ['pending', 'sent', 'failed'] as const
export type AlertMessageStatus = (typeof ALERT_MESSAGE_STATUSES)[number]
