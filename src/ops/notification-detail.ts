// One notification as the admin API and the dashboard show it: the stored
// row, its body decoded for display. Decoding is Apple's format, so it is
// done here, above the storage, which only returns the row.
import { decodeNotificationBody } from '../apple/payload.ts'
import { decodedDocument } from '../decoded/document.ts'
import type { AttemptRow, DeliveryRow, NotificationSummary, UnorderedReads } from '../outbox/engine.ts'
import { maskTopLevelPassword, SECRET_MASK } from './secret-mask.ts'

export interface NotificationDetail {
  notification: NotificationSummary
  // The decoded payload, or null when the stored body does not decode; then
  // payloadError says why. A V1 body's top-level password is masked in both.
  payload: unknown
  payloadError: string | null
  // The stored body's text, or null when the row's bytes cannot be read back.
  body: string | null
  deliveries: Array<DeliveryRow & { history: AttemptRow[] }>
  // Asked for with { decoded: true }: the document a target with "payload":
  // "decoded" is sent, every attempt alike (a pure function of the row,
  // src/decoded/document.ts), as its exact text; or why it cannot be built.
  decoded?: { text: string; error: null } | { text: null; error: string }
}

function decodedOf (body: Buffer, n: NotificationSummary): NonNullable<NotificationDetail['decoded']> {
  try {
    return { text: decodedDocument(body, n).toString('utf8'), error: null }
  } catch (err) {
    return { text: null, error: `the decoded document cannot be built: ${err instanceof Error ? err.message : String(err)}` }
  }
}

// Whatever the row holds (it may predate today's checks, or have been written
// straight into the database). The payload is only ever what today's decoder
// accepts, so it nests at most MAX_JSON_DEPTH levels and serialises safely;
// anything else is shown as its raw text, which is one string.
export async function notificationDetail (storage: Pick<UnorderedReads, 'getNotification'>, id: string, opts: { decoded?: boolean } = {}): Promise<NotificationDetail | null> {
  const found = await storage.getNotification(id)
  if (found === null) return null
  const { body, bodyError, dedupeKey, ...notification } = found.notification
  void dedupeKey
  if (body === null) {
    const payloadError = `The stored body cannot be read back: ${bodyError}.`
    return { notification, payload: null, payloadError, body: null, deliveries: found.deliveries, ...opts.decoded === true ? { decoded: { text: null, error: payloadError } } : {} }
  }
  let payload: unknown = null
  let payloadError: string | null = null
  try {
    const decoded = decodeNotificationBody(body)
    // A V1 body is the payload: its password is the shared secret. A V2
    // payload is Apple's signed JWS payload, which has no such field.
    payload = decoded.version === 1 && Object.hasOwn(decoded.payload, 'password')
      ? { ...decoded.payload, password: SECRET_MASK }
      : decoded.payload
  } catch (err) {
    // The decoder only throws AppError, whose message says what is wrong.
    payloadError = err instanceof Error ? err.message : 'The stored body does not decode.'
  }
  return { notification, payload, payloadError, body: maskTopLevelPassword(body), deliveries: found.deliveries, ...opts.decoded === true ? { decoded: decodedOf(body, notification) } : {} }
}
