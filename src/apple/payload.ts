// Recognises Apple's two notification formats and decodes what storehook
// indexes. Pure: no I/O, no verification (verify.ts does that next), and it
// never throws anything but AppError, whatever bytes arrive.
import { AppError } from '../errors.ts'

export type Environment = 'Production' | 'Sandbox' | 'Xcode' | 'LocalTesting' | string

export interface CompactJws {
  header: Record<string, unknown>
  headerB64: string
  payloadB64: string
  signatureB64: string
  // headerB64 + '.' + payloadB64: the bytes the signature covers.
  signingInput: string
}

export interface DecodedNotification {
  version: 1 | 2
  notificationUuid: string | null
  notificationType: string
  subtype: string | null
  environment: Environment | null
  bundleId: string | null
  appAppleId: string | null
  signedDate: number | null
  originalTransactionId: string | null
  transactionId: string | null
  productId: string | null
  appAccountToken: string | null
  password: string | null
  jws: CompactJws | null
  payload: Record<string, unknown>
}

type Obj = Record<string, unknown>

const BASE64URL = /^[A-Za-z0-9_-]*$/

function isObject (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function str (v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null
}

// Apple sends appAppleId as a number; V1 sends some ids as strings.
function idString (v: unknown): string | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v)
  return str(v)
}

function num (v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

// JSON.parse creates "__proto__" as an own property and never touches the
// prototype; nothing here merges parsed objects into others, so there is no
// pollution path. A reviver would cost speed on every request for nothing.
function parseJson (text: string): unknown {
  return JSON.parse(text)
}

function decodePart (part: string): unknown {
  if (!BASE64URL.test(part)) throw new Error('not base64url')
  return parseJson(Buffer.from(part, 'base64url').toString('utf8'))
}

export function decodeCompactJws (token: string): { jws: CompactJws; payload: Obj } {
  const first = token.indexOf('.')
  const second = first < 0 ? -1 : token.indexOf('.', first + 1)
  if (first <= 0 || second < 0 || token.indexOf('.', second + 1) !== -1) {
    throw new AppError('PAYLOAD_NOT_JWS', 'signedPayload is not a compact JWS: it must be three base64url parts separated by dots.')
  }
  const headerB64 = token.slice(0, first)
  const payloadB64 = token.slice(first + 1, second)
  const signatureB64 = token.slice(second + 1)
  let header: unknown
  try {
    header = decodePart(headerB64)
  } catch {
    throw new AppError('PAYLOAD_NOT_JWS', 'signedPayload is not a JWS: its header is not base64url-encoded JSON.')
  }
  if (!isObject(header)) throw new AppError('PAYLOAD_NOT_JWS', 'signedPayload is not a JWS: its header is not a JSON object.')
  if (!BASE64URL.test(signatureB64)) throw new AppError('PAYLOAD_NOT_JWS', 'signedPayload is not a JWS: its signature is not base64url.')
  let payload: unknown
  try {
    payload = decodePart(payloadB64)
  } catch {
    throw new AppError('PAYLOAD_MALFORMED', 'signedPayload\'s payload is not base64url-encoded JSON.')
  }
  if (!isObject(payload)) throw new AppError('PAYLOAD_MALFORMED', 'signedPayload\'s payload is not a JSON object.')
  return { jws: { header, headerB64, payloadB64, signatureB64, signingInput: `${headerB64}.${payloadB64}` }, payload }
}

// Nested JWS (signedTransactionInfo, signedRenewalInfo, signedAppTransactionInfo)
// are covered by the outer signature: read, never verified, and never fatal.
function nestedPayload (v: unknown): Obj | null {
  if (typeof v !== 'string') return null
  const parts = v.split('.')
  if (parts.length !== 3) return null
  try {
    const p = decodePart(parts[1]!)
    return isObject(p) ? p : null
  } catch {
    return null
  }
}

// V2 payloads carry exactly one of these, depending on the notification's kind.
const V2_SECTIONS = ['data', 'summary', 'externalPurchaseToken', 'appData'] as const

function decodeV2 (signedPayload: string): DecodedNotification {
  const { jws, payload } = decodeCompactJws(signedPayload)
  const notificationType = str(payload.notificationType)
  if (notificationType === null) {
    throw new AppError('PAYLOAD_MALFORMED', 'signedPayload\'s payload has no notificationType.')
  }
  let section: Obj = {}
  for (const key of V2_SECTIONS) {
    const s = payload[key]
    if (isObject(s)) {
      section = s
      break
    }
  }
  const tx = nestedPayload(section.signedTransactionInfo) ?? nestedPayload(section.signedAppTransactionInfo)
  const renewal = nestedPayload(section.signedRenewalInfo)
  return {
    version: 2,
    notificationUuid: str(payload.notificationUUID),
    notificationType,
    subtype: str(payload.subtype),
    environment: str(section.environment),
    bundleId: str(section.bundleId),
    appAppleId: idString(section.appAppleId),
    signedDate: num(payload.signedDate),
    originalTransactionId: str(tx?.originalTransactionId) ?? str(renewal?.originalTransactionId),
    transactionId: str(tx?.transactionId),
    productId: str(tx?.productId) ?? str(renewal?.productId) ?? str(renewal?.autoRenewProductId),
    appAccountToken: str(tx?.appAccountToken) ?? str(renewal?.appAccountToken),
    password: null,
    jws,
    payload
  }
}

const V1_ENVIRONMENTS: Record<string, Environment> = { PROD: 'Production', Sandbox: 'Sandbox' }

function decodeV1 (body: Obj, notificationType: string): DecodedNotification {
  const receipt = isObject(body.unified_receipt) ? body.unified_receipt : null
  const latest = receipt !== null && Array.isArray(receipt.latest_receipt_info) && isObject(receipt.latest_receipt_info[0])
    ? receipt.latest_receipt_info[0]
    : null
  const env = str(body.environment)
  return {
    version: 1,
    notificationUuid: null,
    notificationType,
    subtype: null,
    environment: env === null ? null : (V1_ENVIRONMENTS[env] ?? env),
    bundleId: str(body.bid),
    appAppleId: idString(body.app_apple_id),
    signedDate: null,
    originalTransactionId: idString(latest?.original_transaction_id) ?? idString(body.original_transaction_id),
    transactionId: idString(latest?.transaction_id),
    productId: str(latest?.product_id) ?? str(body.auto_renew_product_id),
    appAccountToken: str(latest?.app_account_token),
    password: typeof body.password === 'string' ? body.password : null,
    jws: null,
    payload: body
  }
}

export function decodeNotificationBody (raw: Buffer): DecodedNotification {
  if (raw.length === 0) throw new AppError('BODY_EMPTY')
  let body: unknown
  try {
    body = parseJson(raw.toString('utf8'))
  } catch (err) {
    // V8's message names the position; it never echoes more than a few characters.
    throw new AppError('BODY_NOT_JSON', `Body is not valid JSON: ${String((err as Error).message).slice(0, 100)}`)
  }
  if (!isObject(body)) throw new AppError('BODY_NOT_NOTIFICATION')
  if (typeof body.signedPayload === 'string') return decodeV2(body.signedPayload)
  if (typeof body.notification_type === 'string' && body.notification_type !== '') return decodeV1(body, body.notification_type)
  throw new AppError('BODY_NOT_NOTIFICATION')
}
