// Recognises Apple's two notification formats and decodes what storehook
// indexes. Pure: no I/O, no verification (the signature verifier runs next, on
// `jws`), and it never throws anything but AppError, whatever bytes arrive:
// a stray TypeError here would be a 500, and bad input must only ever be a 400.
import type { indexedColumns, notifications } from '../db/schema.ts'
import { AppError, isAppError, quoteInput } from '../errors.ts'
import { foldKeys, MAX_JSON_DEPTH, scanJson } from './depth.ts'

// The fields storehook indexes, typed from their columns (src/db/schema.ts):
// every one must be set, so a column added there fails to compile until the
// decoders below fill it, and nothing else needs to name it.
export type IndexedFields = Required<Pick<typeof notifications.$inferInsert, keyof typeof indexedColumns>>

export interface CompactJws {
  header: Record<string, unknown>
  headerB64: string
  payloadB64: string
  signatureB64: string
  // headerB64 + '.' + payloadB64: the exact bytes the signature covers.
  signingInput: string
}

export interface DecodedNotification {
  version: 1 | 2
  // What the row stores and indexes: the ingest spreads it into the row as it is.
  indexed: IndexedFields
  password: string | null
  jws: CompactJws | null
  payload: Record<string, unknown>
}

type Obj = Record<string, unknown>

// Buffer.from(s, 'base64url') silently skips characters outside the alphabet
// (and reads some non-ASCII ones as letters: 'Ł' decodes as 'A'), so the
// alphabet is checked first. One anchored character class is linear whatever
// the length, and in V8 it beats a charCodeAt loop several times over.
const BASE64URL = /^[A-Za-z0-9_-]*$/

function isObject (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// Wrong-typed optional fields count as absent: one odd field from a sender
// must not cost the whole notification.
function str (v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null
}

// Apple sends appAppleId as a JSON number, V1 receipts send ids as strings;
// storehook stores both as text. Unsafe integers have already lost digits in
// JSON.parse, so they are dropped rather than stored wrong.
function idString (v: unknown): string | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : null
  return str(v)
}

// A time in milliseconds that a Date can hold (within ±8.64e15): anything
// else (1e300) is no time at all, and every view would have to guard it.
function timeMs (v: unknown): number | null {
  return typeof v === 'number' && !Number.isNaN(new Date(v).getTime()) ? v : null
}

// Apple's value for every field storehook indexes is short: UUIDs, numeric
// ids, bundle IDs, product IDs, enum names. Each is stored in a column (the
// notificationUUID twice more: dedupe key and its unique index), logged, and
// quoted in refusals, so a sender's 700 KB value must not get that far.
export const MAX_INDEXED_CHARS = 256

// An outer field (the signed payload's top level and section, or a V1 body's
// top level): storehook decides on it (dedupe, APPLE_BUNDLE_IDS, routing
// filters, metrics labels), so too long is not Apple's and is refused. Cutting
// it would change the decision: two notificationUUIDs sharing their first 256
// characters would be deduplicated into one.
function outer (v: string | null, field: string, refuse: (why: string) => AppError): string | null {
  if (v !== null && v.length > MAX_INDEXED_CHARS) throw refuse(`${field} is ${v.length} characters long; Apple's are under ${MAX_INDEXED_CHARS}`)
  return v
}

// A field of a nested transaction or receipt: indexing material only, so too
// long is unindexed (null), like any other broken nested value.
function nested (v: string | null): string | null {
  return v !== null && v.length > MAX_INDEXED_CHARS ? null : v
}

// Every JSON text the decoder reads is first checked for depth (depth.ts):
// what JSON.parse builds from a deeper one would later break the views.
const tooDeep = (what: string): AppError =>
  new AppError('BODY_TOO_DEEP', `${what} is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects; Apple's notifications never nest more than a few.`)

// Plain JSON.parse, on purpose: it defines "__proto__" as an own property and
// never touches a prototype, and this module never merges parsed objects into
// others nor indexes a lookup table with a parsed key. A reviver or
// secure-json-parse would cost time on every request to guard against nothing.
// It also returns the top-level keys, folded, and the first one that repeats.
function parseJson (bytes: Buffer, what: string, keysMatter = true): { value: unknown; folded: Set<string>; repeated: string | null } {
  const scan = scanJson(bytes, MAX_JSON_DEPTH, keysMatter)
  if (scan.tooDeep) throw tooDeep(what)
  const value: unknown = JSON.parse(bytes.toString('utf8'))
  return { value, ...foldKeys(scan.keys) }
}

// A JSON text storehook decides on (the body, the JWS header, the JWS
// payload) must not repeat a top-level key: JSON.parse keeps the last of
// two, other parsers the first (or, ignoring case, the last match), so a
// target could act on a part storehook never checked.
function refuseRepeatedKey (repeated: string | null, what: string): void {
  if (repeated === null) return
  throw new AppError('BODY_DUPLICATE_KEY', `${what} repeats the key ${quoteInput(repeated)} (compared unescaped, ignoring case): JSON parsers disagree on which one counts.`)
}

// The header and payload are signed, so only a key holder can repeat a key
// there; but the header says how to verify (alg, x5c), and a target's
// verifier that reads the first of two would check something else than
// storehook did. Apple never repeats a key, so refusing costs nothing.
// The nested JWS are only indexing material: their keys do not matter.
function decodeBase64UrlJson (part: string, what: string, keysMatter = true): unknown {
  const { value, repeated } = parseJson(Buffer.from(part, 'base64url'), what, keysMatter)
  refuseRepeatedKey(repeated, what)
  return value
}

const notJws = (why: string): AppError => new AppError('PAYLOAD_NOT_JWS', `signedPayload is not a compact JWS: ${why}.`)
const malformed = (why: string): AppError => new AppError('PAYLOAD_MALFORMED', `signedPayload does not decode to a notification: ${why}.`)

export function decodeCompactJws (token: string): { jws: CompactJws; payload: Obj } {
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1) throw notJws('it must be three base64url parts separated by dots, and it has fewer')
  if (token.indexOf('.', second + 1) !== -1) throw notJws('it must be three base64url parts separated by dots, and it has more')
  const headerB64 = token.slice(0, first)
  const payloadB64 = token.slice(first + 1, second)
  const signatureB64 = token.slice(second + 1)
  if (headerB64 === '') throw notJws('its header part is empty')
  if (!BASE64URL.test(headerB64)) throw notJws('its header part has characters outside the base64url alphabet')
  let header: unknown
  try {
    header = decodeBase64UrlJson(headerB64, "signedPayload's header")
  } catch (err) {
    if (isAppError(err)) throw err
    throw notJws('its header does not decode to JSON')
  }
  if (!isObject(header)) throw notJws('its header is not a JSON object')
  if (!BASE64URL.test(signatureB64)) throw notJws('its signature part has characters outside the base64url alphabet')
  if (!BASE64URL.test(payloadB64)) throw malformed('the payload part has characters outside the base64url alphabet')
  let payload: unknown
  try {
    payload = decodeBase64UrlJson(payloadB64, "signedPayload's payload")
  } catch (err) {
    if (isAppError(err)) throw err
    throw malformed('the payload part does not decode to JSON')
  }
  if (!isObject(payload)) throw malformed('the payload is not a JSON object')
  return { jws: { header, headerB64, payloadB64, signatureB64, signingInput: `${headerB64}.${payloadB64}` }, payload }
}

// The nested JWS (signedTransactionInfo, signedRenewalInfo) are covered by the
// outer signature, so their payload is read without checking their own; and
// they are only indexing material, so a broken one yields null, never an error.
// That includes one nested too deep: it is never parsed, and the views never
// decode it (they show it as the string it is in the payload), so refusing a
// whole signed notification for a field storehook only indexes would lose it
// for nothing.
function nestedPayload (v: unknown): Obj | null {
  const bytes = nestedJwsPayload(v)
  if (bytes === null) return null
  try {
    const p = parseJson(bytes, 'a nested JWS', false).value
    return isObject(p) ? p : null
  } catch {
    return null
  }
}

// The payload part of a nested JWS, as bytes (the decoded document parses
// them too: src/decoded/document.ts); null when `v` is not three dotted
// parts with a base64url middle.
export function nestedJwsPayload (v: unknown): Buffer | null {
  if (typeof v !== 'string') return null
  const first = v.indexOf('.')
  const second = first === -1 ? -1 : v.indexOf('.', first + 1)
  if (second === -1) return null
  const part = v.slice(first + 1, second)
  return BASE64URL.test(part) ? Buffer.from(part, 'base64url') : null
}

// Apple's payload carries exactly one of these, depending on the kind of
// notification; the order is the one Apple's own library checks them in.
export const V2_SECTIONS = ['data', 'summary', 'externalPurchaseToken', 'appData'] as const

function decodeV2 (signedPayload: string): DecodedNotification {
  const { jws, payload } = decodeCompactJws(signedPayload)
  const notificationType = str(payload.notificationType)
  if (notificationType === null) throw malformed('the payload has no notificationType string')
  let section: Obj = {}
  let sectionName: (typeof V2_SECTIONS)[number] | null = null
  for (const name of V2_SECTIONS) {
    const s = payload[name]
    if (isObject(s)) {
      section = s
      sectionName = name
      break
    }
  }
  let environment = str(section.environment)
  // externalPurchaseToken has no environment field: Apple marks sandbox tokens
  // by prefixing their id, and its library reads anything else as Production.
  if (environment === null && sectionName === 'externalPurchaseToken') {
    const id = str(section.externalPurchaseId)
    environment = id !== null && id.startsWith('SANDBOX') ? 'Sandbox' : 'Production'
  }
  // appData.signedAppTransactionInfo is not decoded: an app transaction has
  // no transaction, original transaction, product or account token to index.
  const tx = nestedPayload(section.signedTransactionInfo)
  const renewal = nestedPayload(section.signedRenewalInfo)
  return {
    version: 2,
    indexed: {
      notificationUuid: outer(str(payload.notificationUUID), 'notificationUUID', malformed),
      notificationType: outer(notificationType, 'notificationType', malformed)!,
      subtype: outer(str(payload.subtype), 'subtype', malformed),
      environment: outer(environment, 'environment', malformed),
      bundleId: outer(str(section.bundleId), 'bundleId', malformed),
      appAppleId: outer(idString(section.appAppleId), 'appAppleId', malformed),
      signedDate: timeMs(payload.signedDate),
      originalTransactionId: nested(idString(tx?.originalTransactionId) ?? idString(renewal?.originalTransactionId)),
      transactionId: nested(idString(tx?.transactionId)),
      // summary (RENEWAL_EXTENSION/SUMMARY) names its product directly.
      productId: nested(str(tx?.productId) ?? str(renewal?.productId) ?? str(renewal?.autoRenewProductId) ?? str(section.productId)),
      appAccountToken: nested(str(tx?.appAccountToken) ?? str(renewal?.appAccountToken))
    },
    password: null,
    jws,
    payload
  }
}

// A switch, not a lookup object: the value comes from the sender, and
// `table["constructor"]` would answer with Object.prototype's.
function v1Environment (v: unknown): string | null {
  switch (v) {
    case 'PROD': return 'Production'
    case 'Sandbox': return 'Sandbox'
    default: return str(v)
  }
}

// Apple documents latest_receipt_info as "the latest 100 transactions" without
// promising an order, so the newest purchase is picked rather than trusting [0].
function latestReceiptEntry (list: unknown): Obj | null {
  if (!Array.isArray(list)) return null
  let best: Obj | null = null
  let bestMs = -Infinity
  for (const item of list) {
    if (!isObject(item)) continue
    const at = item.purchase_date_ms
    const ms = typeof at === 'string' ? Number(at) : typeof at === 'number' ? at : NaN
    if (best === null || (Number.isFinite(ms) && ms > bestMs)) {
      best = item
      if (Number.isFinite(ms)) bestMs = ms
    }
  }
  return best
}

const notV1 = (why: string): AppError => new AppError('BODY_NOT_NOTIFICATION', `Body is not an App Store notification: ${why}.`)

function decodeV1 (body: Obj, notificationType: string): DecodedNotification {
  const receipt = isObject(body.unified_receipt) ? body.unified_receipt : null
  // Before March 2021 the transaction sat at the top level; kept as a fallback
  // so that replays of old notifications still index.
  const latest = latestReceiptEntry(receipt?.latest_receipt_info) ??
    (isObject(body.latest_receipt_info) ? body.latest_receipt_info : null) ??
    (isObject(body.latest_expired_receipt_info) ? body.latest_expired_receipt_info : null)
  return {
    version: 1,
    indexed: {
      notificationUuid: null,
      notificationType: outer(notificationType, 'notification_type', notV1)!,
      subtype: null,
      environment: outer(v1Environment(body.environment) ?? str(receipt?.environment), 'environment', notV1),
      bundleId: outer(str(body.bid), 'bid', notV1),
      appAppleId: outer(idString(body.app_apple_id), 'app_apple_id', notV1),
      signedDate: null,
      originalTransactionId: nested(idString(latest?.original_transaction_id) ?? idString(body.original_transaction_id)),
      transactionId: nested(idString(latest?.transaction_id)),
      productId: nested(str(latest?.product_id) ?? str(body.auto_renew_product_id)),
      appAccountToken: nested(str(latest?.app_account_token))
    },
    password: typeof body.password === 'string' ? body.password : null,
    jws: null,
    payload: body
  }
}

// V1 and V2 at once is not Apple's: a target that tells them apart by V1's
// discriminator (notification_type), or trusts a V1 by its password, could
// read a body storehook verified as V2 as an unverified V1, or the other way
// round. Other keys beside signedPayload are allowed: Apple's V2 body is
// exactly {"signedPayload": "..."} today, but refusing any future field would
// turn every notification into a 400 (Apple retries five times, Sandbox
// never), and a key that is neither a repeat of signedPayload nor one of
// these makes no parser read the body as another notification. V1's key set
// is frozen (V1 is deprecated): this can never refuse a future V2 field.
const V1_KEYS = ['notification_type', 'password']
const V2_KEY = 'signedpayload'

export function decodeNotificationBody (raw: Buffer): DecodedNotification {
  if (raw.length === 0) throw new AppError('BODY_EMPTY', 'Body is empty: expected a JSON notification from Apple.')
  let parsed: ReturnType<typeof parseJson>
  try {
    parsed = parseJson(raw, 'Body')
  } catch (err) {
    if (isAppError(err)) throw err
    // V8 quotes at most a few characters around the fault; the cap keeps that
    // true whatever the engine does.
    throw new AppError('BODY_NOT_JSON', `Body is not valid JSON (${(err as Error).message.slice(0, 100)}).`)
  }
  const body = parsed.value
  if (!isObject(body)) {
    const kind = body === null ? 'null' : Array.isArray(body) ? 'an array' : `a ${typeof body}`
    throw new AppError('BODY_NOT_NOTIFICATION', `Body is JSON ${kind}, not an object: expected {"signedPayload": "<JWS>"} (V2) or an object with "notification_type" (V1).`)
  }
  refuseRepeatedKey(parsed.repeated, 'Body')
  if (parsed.folded.has(V2_KEY) && V1_KEYS.some((k) => parsed.folded.has(k))) {
    throw new AppError('BODY_AMBIGUOUS_VERSION', 'Body carries V2\'s "signedPayload" and V1\'s "notification_type" or "password" (keys compared ignoring case): '
      + 'Apple sends one or the other, and a target could read it as either.')
  }
  if (typeof body.signedPayload === 'string') return decodeV2(body.signedPayload)
  const type = str(body.notification_type)
  if (type !== null) return decodeV1(body, type)
  const why = Object.hasOwn(body, 'signedPayload')
    ? '"signedPayload" is not a string'
    : Object.hasOwn(body, 'notification_type')
      ? '"notification_type" is not a non-empty string'
      : 'it has neither "signedPayload" nor "notification_type"'
  throw notV1(why)
}
