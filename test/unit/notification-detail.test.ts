// Showing a stored notification decodes its body above the storage, which
// only returns the row: so the decision is tested with a row, no database.
import t from 'tap'
import type { NotificationRow, NotificationWithHistory } from '../../src/outbox/engine.ts'
import { notificationDetail } from '../../src/ops/notification-detail.ts'
import { SECRET_MASK } from '../../src/ops/secret-mask.ts'

function row (body: Buffer | null): NotificationWithHistory['notification'] {
  const columns: Omit<NotificationRow, 'body'> = {
    id: 'n1', dedupeKey: 'v1:x', receivedAt: 1, source: 'webhook', version: 1, notificationUuid: null, notificationType: 'DID_RENEW',
    subtype: null, environment: 'PROD', bundleId: null, appAppleId: null, signedDate: null, originalTransactionId: null, transactionId: null,
    productId: null, appAccountToken: null, verification: 'unchecked', verificationError: null
  }
  return body === null ? { ...columns, body: null, bodyError: 'deflate body is damaged' } : { ...columns, body, bodyError: null }
}

function stored (body: string | null): { getNotification: (id: string) => Promise<NotificationWithHistory | null> } {
  const notification = row(body === null ? null : Buffer.from(body))
  return { getNotification: async (id) => (id === 'n1' ? { notification, deliveries: [] } : null) }
}

t.test('a V1 body is shown decoded with its password masked, in the payload and the raw text', async (t) => {
  const detail = await notificationDetail(stored('{"notification_type":"DID_RENEW","password":"s3cret","environment":"PROD"}'), 'n1')
  t.equal((detail!.payload as { password: string }).password, SECRET_MASK)
  t.notMatch(detail!.body, /s3cret/)
  t.equal(detail!.payloadError, null)
  t.notOk('dedupeKey' in detail!.notification, 'the dedupe key is storage\'s own')
  t.notOk('body' in detail!.notification)
})

t.test('a body that does not decode is shown as text, with the reason', async (t) => {
  const detail = await notificationDetail(stored('not json'), 'n1')
  t.equal(detail!.payload, null)
  t.type(detail!.payloadError, 'string')
  t.equal(detail!.body, 'not json')
})

t.test('no such notification: null', async (t) => {
  t.equal(await notificationDetail(stored('{}'), 'missing'), null)
})

t.test('a body that cannot be read back is shown as missing, with the reason, never as other bytes', async (t) => {
  const detail = await notificationDetail(stored(null), 'n1')
  t.equal(detail!.payload, null)
  t.equal(detail!.body, null)
  t.match(detail!.payloadError, /cannot be read back: deflate body is damaged/)
  t.notOk('bodyError' in detail!.notification, 'the reason is said once, in payloadError')
})
