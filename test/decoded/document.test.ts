// The decoded document, on its own: for every shape of Apple's notification
// (the real one, Apple's library vectors and models, each nested JWS signed)
// its fields equal what Apple's own library verifies and decodes from the
// same payload; unknown fields and exact numbers pass through; the JSON
// Schema (ajv, strict) accepts every document.
import t from 'tap'
import { decodedDocument, type DocumentFacts } from '../../src/decoded/document.ts'
import { keepsValue } from '../../src/decoded/exact-json.ts'
import type { DecodedNotification } from '../../src/decoded/types.ts'
import { signJws, signNotification } from '../helpers/apple-chain.ts'
import { appleDecodes, cases, schemaValidator, TOMORROW, TOMORROW_CASE, V1_BODY } from '../helpers/decoded.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'

const FACTS: DocumentFacts = { id: '0193b3c4-0000-7000-8000-000000000001', source: 'webhook', receivedAt: 1_700_000_000_123, verification: 'verified', verificationError: null }
const validate = schemaValidator()

function documentOf (body: Buffer, facts: DocumentFacts = FACTS): DecodedNotification {
  const doc = JSON.parse(decodedDocument(body, facts).toString('utf8')) as DecodedNotification
  if (!validate(doc)) throw new Error(`schema: ${JSON.stringify(validate.errors)}`)
  return doc
}

t.test('every shape decodes to what Apple\'s library decodes, nested JWS included', async (t) => {
  const { all } = cases()
  for (const c of all) {
    const doc = documentOf(c.body)
    const signedPayload = (JSON.parse(c.body.toString('utf8')) as { signedPayload: string }).signedPayload
    t.same(doc.notification, await appleDecodes(c), `${c.name}: the notification equals Apple's decoding`)
    t.equal(doc.signedPayload, signedPayload, `${c.name}: Apple's signedPayload is kept as sent`)
    t.match(doc, { schemaVersion: 1, id: FACTS.id, source: 'webhook', receivedAt: FACTS.receivedAt, verification: { status: 'verified', reason: null }, notificationVersion: 2 }, `${c.name}: envelope`)
  }
  const nested = all.flatMap((c) => {
    const n = documentOf(c.body).notification as unknown as Record<string, Record<string, unknown> | undefined>
    return [n.data?.transactionInfo, n.data?.renewalInfo, n.appData?.appTransactionInfo].filter((x) => x !== undefined)
  })
  t.equal(nested.length, 9, "every nested JWS of the cases is decoded: 4 with a transaction and a renewal, 1 with an app transaction")
  const text = all.map((c) => decodedDocument(c.body, FACTS).toString('utf8')).join()
  t.notMatch(text, /"signed(Transaction|Renewal|AppTransaction)Info"/, 'no nested JWS is left undecoded')
})

t.test('a field Apple adds tomorrow passes through at every level', async (t) => {
  const withTomorrow = cases().all.find((c) => c.name === TOMORROW_CASE)!
  const n = documentOf(withTomorrow.body).notification as Record<string, unknown> & { data: Record<string, Record<string, unknown>> }
  t.same(n.fieldAppleAddsTomorrow, TOMORROW.fieldAppleAddsTomorrow, 'top level')
  t.same(n.data.fieldAppleAddsTomorrow, TOMORROW.fieldAppleAddsTomorrow, 'in data')
  t.same(n.data.transactionInfo!.fieldAppleAddsTomorrow, TOMORROW.fieldAppleAddsTomorrow, 'in the transaction')
  t.same(n.data.renewalInfo!.fieldAppleAddsTomorrow, TOMORROW.fieldAppleAddsTomorrow, 'in the renewal')
})

t.test('numbers reach the receiver with Apple\'s value, past 2^53 and past a double\'s digits', async (t) => {
  const { chain } = cases()
  const big = '12345678901234567890123'
  const precise = '0.10000000000000000555111512312578270211815834045410156251'
  const tx = signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload: `${Buffer.from(`{"transactionId":"1","price":${big},"rate":${precise},"small":4990,"neg":-1.5e-3,"digitsInString":"${big}"}`).toString('base64url')}`, key: chain.leaf.privateKey })
  const payload = `{"notificationType":"DID_RENEW","notificationUUID":"u-1","signedDate":1698148900000,"appleCounter":9007199254740993,"data":{"bundleId":"com.example","environment":"Sandbox","signedTransactionInfo":"${tx}"}}`
  const body = Buffer.from(JSON.stringify({ signedPayload: signNotification(chain, Buffer.from(payload).toString('base64url')) }))
  const text = decodedDocument(body, FACTS).toString('utf8')
  t.match(text, `"appleCounter":9007199254740993,`, 'an integer past 2^53 in the payload keeps its digits')
  t.match(text, `"price":${big},`, 'a 23-digit integer in a nested JWS keeps its digits')
  t.match(text, `"rate":${precise},`, 'a decimal with more digits than a double keeps them')
  t.match(text, '"small":4990,"neg":-0.0015,', 'ordinary numbers are written as JSON writes them, same value')
  t.match(text, `"digitsInString":"${big}"`, 'a string of digits stays a string')
  t.notMatch(text, /\\u0000/, 'no marker is left in the text')
  t.ok(validate(JSON.parse(text)), 'the schema accepts it')
  t.equal(decodedDocument(body, FACTS).toString('utf8'), text, 'the same inputs give the same bytes')
  // A string a sender wrote to look like a marker is only a string.
  const forged = Buffer.from(`{"notification_type":"DID_RENEW","note":"\\u0000abc:123","n":123456789012345678901}`)
  const v1 = decodedDocument(forged, FACTS).toString('utf8')
  t.match(v1, '"note":"\\u0000abc:123","n":123456789012345678901}', 'a marker-like string stays a string')
  for (const [token, keeps] of [['0', true], ['-0', true], ['1.50e3', true], ['1e400', false], ['9007199254740993', false], ['1e-99999999999999999999', false], ['0e99999999999999999999', true], ['0.1', true], ['1e+0000000000000000000000001', true], ['1e-' + '9'.repeat(100_000), false], ['5' + '0'.repeat(100_000) + 'e-100000', true]] as const) {
    t.equal(keepsValue(token), keeps, `${token.slice(0, 40)}: ${keeps ? 'kept by a double' : 'changed by a double'}`)
  }
})

t.test('V1 arrives as its object in the same envelope, without the shared secret', async (t) => {
  for (const body of [V1_BODY, v1Body()]) {
    const doc = documentOf(body, { ...FACTS, source: 'quarantine', verification: 'unchecked', verificationError: 'VERIFY_SIGNATURES=off' })
    const { password, ...expected } = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    t.type(password, 'string', 'the fixture has a password')
    t.same(doc.notification, expected, 'the V1 object, every other field as sent')
    t.match(doc, { notificationVersion: 1, signedPayload: null, source: 'quarantine', verification: { status: 'unchecked', reason: 'VERIFY_SIGNATURES=off' } })
    t.notMatch(decodedDocument(body, FACTS).toString('utf8'), String(password), 'the password appears nowhere')
  }
})

t.test('what is not a decodable nested JWS stays as it was, and a __proto__ field stays a field', async (t) => {
  const b64 = (v: string): string => Buffer.from(v).toString('base64url')
  const data = `{"bundleId":"com.example","signedTransactionInfo":"not-a-jws","signedRenewalInfo":"${b64('{}')}.${b64('[1,2]')}.sig","__proto__":{"polluted":true},"transactionInfo":"mine"}`
  const payload = `{"notificationType":"DID_RENEW","data":${data}}`
  const body = Buffer.from(JSON.stringify({ signedPayload: `${b64('{"alg":"ES256"}')}.${b64(payload)}.sig` }))
  // Not Apple's shape (a transactionInfo that is a string), so not
  // validated: the schema describes Apple's types, and says so below.
  const doc = JSON.parse(decodedDocument(body, FACTS).toString('utf8')) as DecodedNotification
  t.notOk(validate(doc), 'the schema refuses a transactionInfo that is not an object')
  const d = doc.notification as unknown as { data: Record<string, unknown> }
  t.equal(d.data.signedTransactionInfo, 'not-a-jws', 'not a JWS: kept as the string it was')
  t.equal(d.data.signedRenewalInfo, `${b64('{}')}.${b64('[1,2]')}.sig`, 'a payload that is not an object: kept')
  t.equal(d.data.transactionInfo, 'mine', 'nothing decoded, so the field of that name is the sender\'s')
  t.ok(Object.hasOwn(d.data, '__proto__'), '__proto__ is an own field')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched')
  // The test helper's bodies: a nested JWS with a placeholder signature decodes too.
  const helper = documentOf(v2Body()).notification as unknown as { data: { transactionInfo: Record<string, unknown> } }
  t.equal(helper.data.transactionInfo.productId, 'pro.monthly')
})

t.test('a body that is not a notification throws the ingest\'s AppError', async (t) => {
  t.throws(() => decodedDocument(Buffer.from('{"nothing":1}'), FACTS), { code: 'BODY_NOT_NOTIFICATION' })
})

t.test('the schema refuses what is not a decoded document', async (t) => {
  const doc = documentOf(v2Body()) as unknown as Record<string, unknown>
  t.notOk(validate({ ...doc, schemaVersion: 2 }), 'another schema version')
  t.notOk(validate({ ...doc, source: 'elsewhere' }), 'an unknown source')
  t.notOk(validate({ ...doc, signedPayload: null }), 'a V2 without its signedPayload')
  t.notOk(validate({ ...doc, notificationVersion: 1, notification: { notification_type: 'X', password: 'p' }, signedPayload: null }), 'a V1 with its password')
})
