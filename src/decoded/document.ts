// Pure: the decoded document of one stored notification (types.ts,
// schemas/decoded-notification.v1.json), from its stored bytes and the
// facts its row never changes. The same inputs give the same bytes, so every
// retry sends, and the dashboard shows, what the first attempt sent, without
// storing a second body. Throws only AppError (a body that is not a
// notification, which the ingest refused already).
import { decodeNotificationBody, nestedJwsPayload, V2_SECTIONS } from '../apple/payload.ts'
import { MAX_JSON_DEPTH, scanJson } from '../apple/depth.ts'
import type { NotificationSource, VerificationStatus } from '../db/vocabulary.ts'
import { ExactJson } from './exact-json.ts'
import type { DecodedNotification, DecodedNotificationV1, DecodedNotificationV2, NotificationPayload } from './types.ts'

export const SCHEMA_VERSION = 1

// What the document says of the notification besides Apple's payload: the
// row's id and facts, written once when it was stored.
export interface DocumentFacts {
  id: string
  source: NotificationSource
  receivedAt: number
  verification: VerificationStatus
  verificationError: string | null
}

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

// Each nested JWS Apple may put in a section, and the name its decoded
// payload takes in the document, in the place of the signed field.
const NESTED = new Map([
  ['signedTransactionInfo', 'transactionInfo'],
  ['signedRenewalInfo', 'renewalInfo'],
  ['signedAppTransactionInfo', 'appTransactionInfo']
])

// A nested JWS's payload, or null when it does not decode to an object
// (it then stays the string it was). Its signature is not checked: the outer
// signature covers it, as the ingest's verdict says.
function nestedObject (v: unknown, exact: ExactJson): Obj | null {
  const bytes = nestedJwsPayload(v)
  if (bytes === null || scanJson(bytes, MAX_JSON_DEPTH, false).tooDeep) return null
  try {
    const value = exact.parse(bytes)
    return isObject(value) ? value : null
  } catch {
    return null
  }
}

// The section with each nested JWS replaced by its payload, key order kept.
// Built with fromEntries: each key is defined as the section's own, so a
// "__proto__" a sender wrote stays a field, never a prototype.
function decodeSection (section: Obj, exact: ExactJson): Obj {
  const decoded = new Map<string, Obj>()
  for (const [signed, name] of NESTED) {
    const value = Object.hasOwn(section, signed) ? nestedObject(section[signed], exact) : null
    if (value !== null) decoded.set(name, value)
  }
  if (decoded.size === 0) return section
  return Object.fromEntries(Object.entries(section).flatMap(([k, v]): Array<[string, unknown]> => {
    const name = NESTED.get(k)
    if (name !== undefined && decoded.has(name)) return [[name, decoded.get(name)]]
    // A field of the section that already bears a decoded name gives way to it.
    return decoded.has(k) ? [] : [[k, v]]
  }))
}

export function decodedDocument (body: Buffer, facts: DocumentFacts): Buffer {
  const n = decodeNotificationBody(body)
  const exact = new ExactJson()
  const envelope = {
    schemaVersion: SCHEMA_VERSION,
    id: facts.id,
    source: facts.source,
    receivedAt: facts.receivedAt,
    verification: { status: facts.verification, reason: facts.verificationError }
  } as const
  // signedPayload goes last, spliced in rather than serialised: it is 5-15 KB
  // of base64url and dots (decodeCompactJws checked every part), which
  // JSON.stringify would scan for characters to escape and find none.
  let doc: Omit<DecodedNotification, 'signedPayload'>
  let signedPayload = 'null'
  if (n.version === 2 && n.jws !== null) {
    const payload = exact.parse(Buffer.from(n.jws.payloadB64, 'base64url'), n.payload) as Obj
    const notification = Object.fromEntries(Object.entries(payload).map(([k, v]) =>
      [k, (V2_SECTIONS as readonly string[]).includes(k) && isObject(v) ? decodeSection(v, exact) : v])) as NotificationPayload
    doc = { ...envelope, notificationVersion: 2, notification } satisfies Omit<DecodedNotificationV2, 'signedPayload'>
    signedPayload = `"${n.jws.signingInput}.${n.jws.signatureB64}"`
  } else {
    // The password is the app's shared secret: it vouched for the
    // notification to storehook, and a target trusts storehook's signature.
    const { password, ...rest } = exact.parse(body, n.payload) as Obj
    void password
    doc = { ...envelope, notificationVersion: 1, notification: rest as DecodedNotificationV1['notification'] } satisfies Omit<DecodedNotificationV1, 'signedPayload'>
  }
  const text = exact.stringify(doc)
  return Buffer.from(`${text.slice(0, -1)},"signedPayload":${signedPayload}}`)
}
