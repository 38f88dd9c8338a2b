import { generateKeyPairSync, sign, verify, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { decodeCompactJws, decodeNotificationBody, type DecodedNotification, type IndexedFields } from '../../src/apple/payload.ts'
import { indexedColumns } from '../../src/db/schema.ts'
import { MAX_JSON_DEPTH } from '../../src/apple/depth.ts'
import { AppError, type ErrorCode } from '../../src/errors.ts'

type Obj = Record<string, unknown>

const fixtures = new URL('../fixtures/apple/', import.meta.url)
const fixture = (path: string): Buffer => readFileSync(new URL(path, fixtures))
const fixtureText = (path: string): string => fixture(path).toString('utf8').trim()
const model = (name: string): Obj => JSON.parse(fixture(`library-vectors/models/${name}.json`).toString('utf8')) as Obj

const b64u = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

// A throwaway ES256 key: the decoder does not verify, but signing for real
// proves it hands the verifier exactly the bytes that were signed.
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

function signJws (payload: unknown, header: Obj = { alg: 'ES256', typ: 'JWT', x5c: ['AAAA', 'BBBB', 'CCCC'] }): string {
  const input = `${b64u(header)}.${b64u(payload)}`
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

function verifies (n: Pick<DecodedNotification, 'jws'>, key: KeyObject | X509Certificate): boolean {
  const publicKey = key instanceof X509Certificate ? key.publicKey : key
  return verify('sha256', Buffer.from(n.jws!.signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(n.jws!.signatureB64, 'base64url'))
}

// The decoder's answer with its indexed fields beside version, password, jws
// and payload: the values these tests check, read in one place.
function decode (raw: Buffer): IndexedFields & Omit<DecodedNotification, 'indexed'> {
  const { indexed, ...rest } = decodeNotificationBody(raw)
  return { ...indexed, ...rest }
}

// Apple's formatting, not JSON.stringify's: proves nothing re-serialises the body.
const v2Body = (jws: string): Buffer => Buffer.from(`{"signedPayload": "${jws}"}`)
const v1Body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o))

const transaction = {
  transactionId: '23456',
  originalTransactionId: '12345',
  webOrderLineItemId: '34343',
  bundleId: 'com.example',
  productId: 'com.example.product',
  subscriptionGroupIdentifier: '55555',
  purchaseDate: 1698148900000,
  originalPurchaseDate: 1698148800000,
  expiresDate: 1698149000000,
  quantity: 1,
  type: 'Auto-Renewable Subscription',
  appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138',
  inAppOwnershipType: 'PURCHASED',
  signedDate: 1698148900000,
  environment: 'LocalTesting',
  transactionReason: 'PURCHASE',
  storefront: 'USA',
  storefrontId: '143441',
  price: 10990,
  currency: 'USD',
  appTransactionId: '71134'
}
const renewal = {
  expirationIntent: 1,
  originalTransactionId: '12345',
  autoRenewProductId: 'com.example.product.2',
  productId: 'com.example.product',
  autoRenewStatus: 1,
  signedDate: 1698148800000,
  environment: 'LocalTesting',
  recentSubscriptionStartDate: 1698148800000,
  renewalDate: 1698148850000,
  appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138'
}

function expectCode (t: Test, fn: () => unknown, code: ErrorCode, name: string): AppError | null {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof AppError, `${name}: an AppError`)
    const e = err as AppError
    t.equal(e.code, code, `${name}: ${code}`)
    t.ok(e.message.length > 15 && e.message.length < 260, `${name}: a short message that says something ("${e.message}")`)
    return e
  }
  t.fail(`${name}: expected ${code}, nothing was thrown`)
  return null
}

t.test('the library\'s testNotification (V2 TEST, data, Sandbox)', async (t) => {
  const token = fixtureText('library-vectors/mock_signed_data/testNotification')
  const n = decode(v2Body(token))
  t.match(n, {
    version: 2,
    notificationUuid: '9ad56bd2-0bc6-42e0-af24-fd996d87a1e6',
    notificationType: 'TEST',
    subtype: null,
    environment: 'Sandbox',
    bundleId: 'com.example',
    appAppleId: '1234',
    signedDate: 1681314324000,
    originalTransactionId: null,
    transactionId: null,
    productId: null,
    appAccountToken: null,
    password: null
  })
  t.same(n.payload, {
    data: { appAppleId: 1234, environment: 'Sandbox', bundleId: 'com.example' },
    notificationUUID: '9ad56bd2-0bc6-42e0-af24-fd996d87a1e6',
    signedDate: 1681314324000,
    notificationType: 'TEST'
  })
  const jws = n.jws!
  t.equal(`${jws.headerB64}.${jws.payloadB64}.${jws.signatureB64}`, token, 'the three parts are the token, split')
  t.equal(jws.signingInput, token.slice(0, token.lastIndexOf('.')))
  t.equal(jws.header.alg, 'ES256')
  t.equal(jws.header.typ, 'JWT')
  t.ok(Array.isArray(jws.header.x5c) && (jws.header.x5c as unknown[]).length === 3, 'the x5c chain is there for the verifier')
  const leaf = new X509Certificate(Buffer.from((jws.header.x5c as string[])[0]!, 'base64'))
  t.ok(verifies(n, leaf), 'signingInput and signatureB64 are the bytes the leaf signed')
})

t.test('the indexed fields are exactly the indexed columns, for V1 and V2', async (t) => {
  // The ingest spreads this object into the row: a key that is not a column
  // (the V1 password, say) would be stored or break the insert, and a column
  // missing here would never be filled.
  const columns = Object.keys(indexedColumns).sort()
  const v2 = decodeNotificationBody(v2Body(fixtureText('library-vectors/mock_signed_data/testNotification')))
  const v1 = decodeNotificationBody(v1Body({ notification_type: 'DID_RENEW', password: 'secret' }))
  t.same(Object.keys(v2.indexed).sort(), columns, 'V2')
  t.same(Object.keys(v1.indexed).sort(), columns, 'V1')
  t.equal(v1.password, 'secret', 'the password stays beside the indexed fields')
})

t.test('the real Production TEST notification, byte for byte as Apple sent it', async (t) => {
  const raw = fixture('real/production-TEST-2024-10-17.json')
  const n = decode(raw)
  t.match(n, {
    version: 2,
    notificationUuid: '2e2a6ce0-ec9f-4037-b1bf-618af85527bd',
    notificationType: 'TEST',
    subtype: null,
    environment: 'Production',
    bundleId: 'com.nineton.taller',
    appAppleId: '6450284872',
    signedDate: 1729136651128,
    originalTransactionId: null,
    transactionId: null,
    productId: null,
    appAccountToken: null,
    password: null
  })
  t.equal(new Date(n.signedDate!).toISOString().slice(0, 10), '2024-10-17')
  t.same(n.payload, {
    notificationType: 'TEST',
    notificationUUID: '2e2a6ce0-ec9f-4037-b1bf-618af85527bd',
    data: { appAppleId: 6450284872, bundleId: 'com.nineton.taller', environment: 'Production' },
    version: '2.0',
    signedDate: 1729136651128
  })
  const x5c = n.jws!.header.x5c as string[]
  t.equal(x5c.length, 3)
  t.equal(n.jws!.header.alg, 'ES256')
  const leaf = new X509Certificate(Buffer.from(x5c[0]!, 'base64'))
  t.ok(verifies(n, leaf), 'Apple\'s signature covers exactly signingInput')
  const signedPayload = (JSON.parse(raw.toString('utf8')) as { signedPayload: string }).signedPayload
  t.equal(n.jws!.signingInput + '.' + n.jws!.signatureB64, signedPayload)
})

t.test('data: SUBSCRIBED / INITIAL_BUY, with signed transaction and renewal info', async (t) => {
  const m = model('signedNotification')
  const data = { ...(m.data as Obj), signedTransactionInfo: signJws(transaction), signedRenewalInfo: signJws(renewal) }
  const n = decode(v2Body(signJws({ ...m, data })))
  t.same({ ...n, jws: null, payload: null }, {
    version: 2,
    notificationUuid: m.notificationUUID,
    notificationType: 'SUBSCRIBED',
    subtype: 'INITIAL_BUY',
    environment: 'LocalTesting',
    bundleId: 'com.example',
    appAppleId: '41234',
    signedDate: 1698148900000,
    originalTransactionId: '12345',
    transactionId: '23456',
    productId: 'com.example.product',
    appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138',
    password: null,
    jws: null,
    payload: null
  })
  t.equal(n.notificationUuid, '002e14d5-51f5-4503-b5a8-c3a1af68eb20')
  t.same(n.payload, { ...m, data })
  t.ok(verifies(n, publicKey), 'the outer signature verifies over signingInput')

  t.test('the model as published: placeholder strings, not JWS, in the nested fields', async (t) => {
    const n = decode(v2Body(signJws(m)))
    t.match(n, { notificationType: 'SUBSCRIBED', environment: 'LocalTesting', bundleId: 'com.example', appAppleId: '41234' })
    t.match(n, { originalTransactionId: null, transactionId: null, productId: null, appAccountToken: null }, 'broken nested JWS leave the fields null')
  })

  t.test('renewal info alone still names the subscription', async (t) => {
    const n = decode(v2Body(signJws({ ...m, data: { ...(m.data as Obj), signedTransactionInfo: undefined, signedRenewalInfo: signJws(renewal) } })))
    t.match(n, { originalTransactionId: '12345', transactionId: null, productId: 'com.example.product', appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138' })
    const { productId: _, appAccountToken: __, ...older } = renewal
    const n2 = decode(v2Body(signJws({ ...m, data: { ...(m.data as Obj), signedTransactionInfo: 'x.y', signedRenewalInfo: signJws(older) } })))
    t.match(n2, { originalTransactionId: '12345', productId: 'com.example.product.2', appAccountToken: null }, 'older renewal info: autoRenewProductId')
  })

  t.test('the library\'s signed transactionInfo and renewalInfo decode, though they carry no ids', async (t) => {
    const n = decode(v2Body(signJws({
      ...m,
      data: { ...(m.data as Obj), signedTransactionInfo: fixtureText('library-vectors/mock_signed_data/transactionInfo'), signedRenewalInfo: fixtureText('library-vectors/mock_signed_data/renewalInfo') }
    })))
    t.match(n, { notificationType: 'SUBSCRIBED', originalTransactionId: null, transactionId: null, productId: null, appAccountToken: null })
  })

  t.test('every kind of broken nested JWS is ignored, never fatal', async (t) => {
    const broken: unknown[] = [
      '', 'abc', 'a.b', `${b64u({ alg: 'none' })}..sig`, `${b64u({ alg: 'none' })}.${b64u('nope')}.sig`,
      `${b64u({ alg: 'none' })}.${b64u([transaction])}.sig`, `${b64u({ alg: 'none' })}.${b64u(transaction)}+/=.sig`,
      42, null, true, [signJws(transaction)], { signedTransactionInfo: signJws(transaction) }
    ]
    for (const bad of broken) {
      const n = decode(v2Body(signJws({ ...m, data: { ...(m.data as Obj), signedTransactionInfo: bad, signedRenewalInfo: bad } })))
      t.match(n, { notificationType: 'SUBSCRIBED', bundleId: 'com.example', originalTransactionId: null, transactionId: null, productId: null }, JSON.stringify(bad).slice(0, 60))
    }
  })

  t.test('nested ids given as numbers are still text', async (t) => {
    const n = decode(v2Body(signJws({ ...m, data: { ...(m.data as Obj), signedTransactionInfo: signJws({ ...transaction, transactionId: 23456, originalTransactionId: 12345 }) } })))
    t.match(n, { originalTransactionId: '12345', transactionId: '23456' })
  })
})

t.test('data: CONSUMPTION_REQUEST', async (t) => {
  const m = model('signedConsumptionRequestNotification')
  const data = { ...(m.data as Obj), signedTransactionInfo: signJws({ ...transaction, type: 'Consumable' }) }
  const n = decode(v2Body(signJws({ ...m, data })))
  t.match(n, {
    version: 2,
    notificationUuid: '002e14d5-51f5-4503-b5a8-c3a1af68eb20',
    notificationType: 'CONSUMPTION_REQUEST',
    subtype: null,
    environment: 'LocalTesting',
    bundleId: 'com.example',
    appAppleId: '41234',
    signedDate: 1698148900000,
    originalTransactionId: '12345',
    transactionId: '23456',
    productId: 'com.example.product'
  })
  t.equal((n.payload.data as Obj).consumptionRequestReason, 'UNINTENDED_PURCHASE')
})

t.test('summary: RENEWAL_EXTENSION / SUMMARY', async (t) => {
  const m = model('signedSummaryNotification')
  const n = decode(v2Body(signJws(m)))
  t.same({ ...n, jws: null }, {
    version: 2,
    notificationUuid: '002e14d5-51f5-4503-b5a8-c3a1af68eb20',
    notificationType: 'RENEWAL_EXTENSION',
    subtype: 'SUMMARY',
    environment: 'LocalTesting',
    bundleId: 'com.example',
    appAppleId: '41234',
    signedDate: 1698148900000,
    originalTransactionId: null,
    transactionId: null,
    productId: 'com.example.product',
    appAccountToken: null,
    password: null,
    jws: null,
    payload: m
  })
  t.ok(verifies(n, publicKey))
})

t.test('externalPurchaseToken: EXTERNAL_PURCHASE_TOKEN / UNREPORTED, environment from the token id', async (t) => {
  for (const [name, environment] of [['signedExternalPurchaseTokenNotification', 'Production'], ['signedExternalPurchaseTokenSandboxNotification', 'Sandbox']] as const) {
    const m = model(name)
    const n = decode(v2Body(signJws(m)))
    t.same({ ...n, jws: null }, {
      version: 2,
      notificationUuid: '002e14d5-51f5-4503-b5a8-c3a1af68eb20',
      notificationType: 'EXTERNAL_PURCHASE_TOKEN',
      subtype: 'UNREPORTED',
      environment,
      bundleId: 'com.example',
      appAppleId: '55555',
      signedDate: 1698148900000,
      originalTransactionId: null,
      transactionId: null,
      productId: null,
      appAccountToken: null,
      password: null,
      jws: null,
      payload: m
    }, name)
  }
  const m = model('signedExternalPurchaseTokenNotification')
  const token = m.externalPurchaseToken as Obj
  const withEnv = decode(v2Body(signJws({ ...m, externalPurchaseToken: { ...token, environment: 'Xcode' } })))
  t.equal(withEnv.environment, 'Xcode', 'an explicit environment, should Apple add one, wins')
  const noId = decode(v2Body(signJws({ ...m, externalPurchaseToken: { ...token, externalPurchaseId: 7 } })))
  t.equal(noId.environment, 'Production', 'as Apple\'s library reads it: not SANDBOX-prefixed means Production')
})

t.test('appData: RESCIND_CONSENT', async (t) => {
  const m = model('signedRescindConsentNotification')
  const appTransaction = { receiptType: 'LocalTesting', appAppleId: 41234, bundleId: 'com.example', appTransactionId: '71134', originalPlatform: 'iOS' }
  for (const appData of [m.appData as Obj, { ...(m.appData as Obj), signedAppTransactionInfo: signJws(appTransaction) }]) {
    const n = decode(v2Body(signJws({ ...m, appData })))
    t.same({ ...n, jws: null }, {
      version: 2,
      notificationUuid: '002e14d5-51f5-4503-b5a8-c3a1af68eb20',
      notificationType: 'RESCIND_CONSENT',
      subtype: null,
      environment: 'LocalTesting',
      bundleId: 'com.example',
      appAppleId: '41234',
      signedDate: 1698148900000,
      originalTransactionId: null,
      transactionId: null,
      productId: null,
      appAccountToken: null,
      password: null,
      jws: null,
      payload: { ...m, appData }
    })
  }
})

t.test('the library\'s wrongBundleId and missingX5CHeaderClaim decode (refusing them is the verifier\'s job)', async (t) => {
  const wrong = decode(v2Body(fixtureText('library-vectors/mock_signed_data/wrongBundleId')))
  t.match(wrong, { notificationType: 'TEST', bundleId: 'com.example.wrong', environment: null, appAppleId: null, signedDate: null, notificationUuid: '9ad56bd2-0bc6-42e0-af24-fd996d87a1e6' })
  const noX5c = decode(v2Body(fixtureText('library-vectors/mock_signed_data/missingX5CHeaderClaim')))
  t.match(noX5c, { notificationType: 'TEST', bundleId: 'com.example' })
  t.equal(noX5c.jws!.header.x5c, undefined)
  t.ok(Array.isArray(noX5c.jws!.header.x5cwrong))
})

t.test('unknown notification types, subtypes and environments are decoded, never refused', async (t) => {
  const n = decode(v2Body(signJws({ notificationType: 'SOMETHING_NEW_2030', subtype: 'ALSO_NEW', data: { environment: 'Moon', bundleId: 'com.example' } })))
  t.match(n, { notificationType: 'SOMETHING_NEW_2030', subtype: 'ALSO_NEW', environment: 'Moon', notificationUuid: null, signedDate: null })
  const bare = decode(v2Body(signJws({ notificationType: 'TEST' })))
  t.match(bare, { notificationType: 'TEST', environment: null, bundleId: null, appAppleId: null })
  const v1 = decode(v1Body({ notification_type: 'NEW_V1_TYPE' }))
  t.match(v1, { version: 1, notificationType: 'NEW_V1_TYPE', environment: null, bundleId: null, password: null })
})

t.test('wrong-typed optional fields are null, not errors', async (t) => {
  const n = decode(v2Body(signJws({
    notificationType: 'DID_RENEW',
    subtype: 5,
    notificationUUID: { id: 1 },
    signedDate: '1698148900000',
    data: { environment: ['Sandbox'], bundleId: 42, appAppleId: 1.5, signedTransactionInfo: signJws({ transactionId: {}, originalTransactionId: [], productId: 3, appAccountToken: false }) }
  })))
  t.same({ ...n, jws: null, payload: null }, {
    version: 2,
    notificationUuid: null,
    notificationType: 'DID_RENEW',
    subtype: null,
    environment: null,
    bundleId: null,
    appAppleId: null,
    signedDate: null,
    originalTransactionId: null,
    transactionId: null,
    productId: null,
    appAccountToken: null,
    password: null,
    jws: null,
    payload: null
  })
  t.equal(decode(v2Body(signJws({ notificationType: 'T', signedDate: Infinity }))).signedDate, null)
  t.equal(decode(v2Body(signJws({ notificationType: 'T', data: { appAppleId: 2 ** 60 } }))).appAppleId, null, 'an id beyond 2^53 has lost digits: not stored')
  t.equal(decode(v2Body(signJws({ notificationType: 'T', data: { appAppleId: '6450284872' } }))).appAppleId, '6450284872')
  t.equal(decode(v2Body(signJws({ notificationType: 'T', data: 'x', summary: { bundleId: 'b' } }))).bundleId, 'b', 'a section that is not an object is skipped')
})

t.test('V1: a DID_RENEW with unified_receipt', async (t) => {
  const raw = fixture('v1/did-renew-production.json')
  const n = decode(raw)
  t.same({ ...n, payload: null }, {
    version: 1,
    notificationUuid: null,
    notificationType: 'DID_RENEW',
    subtype: null,
    environment: 'Production',
    bundleId: 'com.example.app',
    appAppleId: null,
    signedDate: null,
    originalTransactionId: '330000712345678',
    transactionId: '330000798765432',
    productId: 'com.example.premium.monthly',
    appAccountToken: '8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b',
    password: '5f2e0cdaa3a84d0a9d1b3c6e2f7a8b90',
    jws: null,
    payload: null
  })
  const body = JSON.parse(raw.toString('utf8')) as Obj
  t.same(n.payload, body, 'payload is the parsed body')

  t.test('the newest purchase wins, whatever the order of latest_receipt_info', async (t) => {
    const receipt = body.unified_receipt as Obj
    const reversed = { ...body, unified_receipt: { ...receipt, latest_receipt_info: [...(receipt.latest_receipt_info as unknown[])].reverse() } }
    t.equal(decode(v1Body(reversed)).transactionId, '330000798765432')
    const noDates = { ...body, unified_receipt: { ...receipt, latest_receipt_info: [7, { transaction_id: 'first' }, { transaction_id: 'second' }] } }
    t.equal(decode(v1Body(noDates)).transactionId, 'first', 'without dates, the first entry')
    const numeric = { ...body, unified_receipt: { ...receipt, latest_receipt_info: [{ transaction_id: 1, purchase_date_ms: 5 }, { transaction_id: 2, purchase_date_ms: 9 }, { transaction_id: 3, purchase_date_ms: 'later' }] } }
    t.equal(decode(v1Body(numeric)).transactionId, '2', 'numeric dates and ids')
    const empty = { ...body, unified_receipt: { ...receipt, latest_receipt_info: [] } }
    t.match(decode(v1Body(empty)), { transactionId: null, originalTransactionId: null, productId: 'com.example.premium.monthly' }, 'no entry: auto_renew_product_id')
  })

  t.test('environments: PROD, Sandbox, others as given, or the receipt\'s', async (t) => {
    t.equal(decode(v1Body({ ...body, environment: 'Sandbox' })).environment, 'Sandbox')
    t.equal(decode(v1Body({ ...body, environment: 'Elsewhere' })).environment, 'Elsewhere')
    t.equal(decode(v1Body({ ...body, environment: undefined })).environment, 'Production')
    t.equal(decode(v1Body({ notification_type: 'X', environment: 3 })).environment, null)
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      t.equal(decode(v1Body({ notification_type: 'X', environment: key })).environment, key, `${key} is just a string`)
    }
  })

  t.test('notifications from before March 2021 kept the transaction at the top level', async (t) => {
    const old = {
      notification_type: 'INTERACTIVE_RENEWAL',
      environment: 'Sandbox',
      bid: 'com.example.app',
      app_apple_id: 1234567890,
      password: '',
      original_transaction_id: 1000000000000001,
      latest_receipt_info: { original_transaction_id: '1000000000000002', transaction_id: '1000000000000003', product_id: 'p1' }
    }
    t.match(decode(v1Body(old)), { environment: 'Sandbox', appAppleId: '1234567890', password: '', originalTransactionId: '1000000000000002', transactionId: '1000000000000003', productId: 'p1' })
    const expired = { ...old, latest_receipt_info: undefined, latest_expired_receipt_info: { original_transaction_id: '9', transaction_id: '8', product_id: 'p2' } }
    t.match(decode(v1Body(expired)), { originalTransactionId: '9', transactionId: '8', productId: 'p2' })
    const bare = { ...old, latest_receipt_info: undefined }
    t.match(decode(v1Body(bare)), { originalTransactionId: '1000000000000001', transactionId: null, productId: null })
  })

  t.test('wrong types are null', async (t) => {
    const n = decode(v1Body({ notification_type: 'DID_RENEW', bid: 5, password: 12345, app_apple_id: '', unified_receipt: 'nope', auto_renew_product_id: {} }))
    t.match(n, { bundleId: null, password: null, appAppleId: null, productId: null, originalTransactionId: null })
    const n2 = decode(v1Body({ notification_type: 'DID_RENEW', unified_receipt: { latest_receipt_info: { not: 'an array' }, environment: 5 } }))
    t.match(n2, { environment: null, transactionId: null })
  })

  // It used to read the signed one; a target may read the V1 one, so neither is read.
  t.test('when both shapes are present, the body is refused', async (t) => {
    expectCode(t, () => decode(Buffer.from(JSON.stringify({ notification_type: 'DID_RENEW', signedPayload: signJws({ notificationType: 'TEST' }) }))), 'BODY_AMBIGUOUS_VERSION', 'V1 and V2')
  })
})

t.test('decodeCompactJws on its own', async (t) => {
  const token = signJws({ notificationType: 'TEST' })
  const { jws, payload } = decodeCompactJws(token)
  t.same(payload, { notificationType: 'TEST' })
  t.same(jws.header, { alg: 'ES256', typ: 'JWT', x5c: ['AAAA', 'BBBB', 'CCCC'] })
  t.equal([jws.headerB64, jws.payloadB64, jws.signatureB64].join('.'), token)
  t.equal(jws.signingInput, `${jws.headerB64}.${jws.payloadB64}`)
  const unsigned = decodeCompactJws(`${b64u({ alg: 'none' })}.${b64u({ a: 1 })}.`)
  t.equal(unsigned.jws.signatureB64, '', 'an empty signature is the verifier\'s to refuse')
  t.same(unsigned.payload, { a: 1 }, 'no notificationType needed: that is a notification rule')
})

t.test('every error code, with a message that says what is wrong', async (t) => {
  const header = b64u({ alg: 'ES256' })
  const ok = b64u({ notificationType: 'TEST' })
  const sp = (jws: string): Buffer => v2Body(jws)
  const cases: Array<[string, Buffer, ErrorCode, RegExp]> = [
    ['empty body', Buffer.alloc(0), 'BODY_EMPTY', /empty/],
    ['truncated JSON', Buffer.from('{"signedPayload": '), 'BODY_NOT_JSON', /not valid JSON/],
    ['text', Buffer.from('hello world'), 'BODY_NOT_JSON', /not valid JSON/],
    ['form data', Buffer.from('signedPayload=abc'), 'BODY_NOT_JSON', /not valid JSON/],
    ['whitespace only', Buffer.from(' \n'), 'BODY_NOT_JSON', /not valid JSON/],
    ['a UTF-16 body', Buffer.from('{"notification_type":"X"}', 'utf16le'), 'BODY_NOT_JSON', /not valid JSON/],
    ['JSON array', Buffer.from('[1,2,3]'), 'BODY_NOT_NOTIFICATION', /an array/],
    ['JSON string', Buffer.from('"hello"'), 'BODY_NOT_NOTIFICATION', /a string/],
    ['JSON number', Buffer.from('42'), 'BODY_NOT_NOTIFICATION', /a number/],
    ['JSON true', Buffer.from('true'), 'BODY_NOT_NOTIFICATION', /a boolean/],
    ['JSON null', Buffer.from('null'), 'BODY_NOT_NOTIFICATION', /null/],
    ['empty object', Buffer.from('{}'), 'BODY_NOT_NOTIFICATION', /neither "signedPayload" nor "notification_type"/],
    ['object of neither shape', Buffer.from('{"hello":"world"}'), 'BODY_NOT_NOTIFICATION', /neither/],
    ['signedPayload a number', Buffer.from('{"signedPayload": 42}'), 'BODY_NOT_NOTIFICATION', /"signedPayload" is not a string/],
    ['signedPayload null', Buffer.from('{"signedPayload": null}'), 'BODY_NOT_NOTIFICATION', /"signedPayload" is not a string/],
    ['notification_type empty', Buffer.from('{"notification_type": ""}'), 'BODY_NOT_NOTIFICATION', /"notification_type" is not a non-empty string/],
    ['notification_type a number', Buffer.from('{"notification_type": 1}'), 'BODY_NOT_NOTIFICATION', /"notification_type"/],
    ['only on the prototype', Buffer.from('{"__proto__": {"notification_type": "X", "signedPayload": "a.b.c"}}'), 'BODY_NOT_NOTIFICATION', /neither/],
    ['signedPayload empty', sp(''), 'PAYLOAD_NOT_JWS', /three base64url parts/],
    ['signedPayload one part', sp('not-a-jws'), 'PAYLOAD_NOT_JWS', /has fewer/],
    ['signedPayload two parts', sp(`${header}.${ok}`), 'PAYLOAD_NOT_JWS', /has fewer/],
    ['signedPayload four parts', sp(`${header}.${ok}.sig.more`), 'PAYLOAD_NOT_JWS', /has more/],
    ['JWE-like five parts', sp('a.b.c.d.e'), 'PAYLOAD_NOT_JWS', /has more/],
    ['empty header', sp(`.${ok}.sig`), 'PAYLOAD_NOT_JWS', /header part is empty/],
    ['header in padded base64', sp(`${Buffer.from('{"alg":"ES256" }').toString('base64')}.${ok}.sig`), 'PAYLOAD_NOT_JWS', /header part has characters outside/],
    ['header not JSON', sp(`${b64u('nope')}.${ok}.sig`), 'PAYLOAD_NOT_JWS', /header does not decode to JSON/],
    ['header a JSON array', sp(`${b64u([1])}.${ok}.sig`), 'PAYLOAD_NOT_JWS', /header is not a JSON object/],
    ['header JSON null', sp(`${b64u('null')}.${ok}.sig`), 'PAYLOAD_NOT_JWS', /header is not a JSON object/],
    ['signature with a space', sp(`${header}.${ok}.si g`), 'PAYLOAD_NOT_JWS', /signature part has characters outside/],
    ['payload empty', sp(`${header}..sig`), 'PAYLOAD_MALFORMED', /payload part does not decode to JSON/],
    ['payload with characters outside base64url', sp(`${header}.${ok}==.sig`), 'PAYLOAD_MALFORMED', /payload part has characters outside/],
    ['payload not JSON', sp(`${header}.${b64u('nope')}.sig`), 'PAYLOAD_MALFORMED', /payload part does not decode to JSON/],
    ['payload a JSON array', sp(`${header}.${b64u([{ notificationType: 'TEST' }])}.sig`), 'PAYLOAD_MALFORMED', /payload is not a JSON object/],
    ['payload a JSON string', sp(`${header}.${b64u('"TEST"')}.sig`), 'PAYLOAD_MALFORMED', /payload is not a JSON object/],
    ['payload without notificationType', sp(`${header}.${b64u({ data: {} })}.sig`), 'PAYLOAD_MALFORMED', /no notificationType/],
    ['notificationType a number', sp(`${header}.${b64u({ notificationType: 1 })}.sig`), 'PAYLOAD_MALFORMED', /no notificationType/],
    ['notificationType empty', sp(`${header}.${b64u({ notificationType: '' })}.sig`), 'PAYLOAD_MALFORMED', /no notificationType/],
    ['notificationType only on the prototype', sp(`${header}.${b64u('{"__proto__":{"notificationType":"TEST"}}')}.sig`), 'PAYLOAD_MALFORMED', /no notificationType/]
  ]
  for (const [name, body, code, message] of cases) {
    const e = expectCode(t, () => decode(body), code, name)
    t.match(e?.message, message, `${name}: names the problem`)
    t.equal(e?.statusCode, 400, `${name}: 400`)
  }
  for (const [token, code] of [['x', 'PAYLOAD_NOT_JWS'], [`${header}.${b64u('[]')}.`, 'PAYLOAD_MALFORMED']] as const) {
    expectCode(t, () => decodeCompactJws(token), code, `decodeCompactJws(${token.slice(0, 20)})`)
  }
})

t.test('messages never echo more than ~100 characters of the input', async (t) => {
  const long = 'A'.repeat(10_000)
  const bodies: Array<[string, Buffer]> = [
    ['huge not-JSON', Buffer.from(`{"x": ${long}`)],
    ['huge not-JSON string', Buffer.from(`"${long}`)],
    ['huge garbage at the end', Buffer.from(`{"notification_type": "X"} ${long}`)],
    ['huge array', Buffer.from(`["${long}"]`)],
    ['huge notification_type of the wrong type', Buffer.from(`{"notification_type": ["${long}"]}`)],
    ['huge one-part JWS', v2Body(long)],
    ['huge bad header', v2Body(`${long}.${long}.${long}`)],
    ['huge header with a bad character', v2Body(`${long}!.${long}.${long}`)],
    ['huge bad payload', v2Body(`${b64u({ alg: 'ES256' })}.${long}.${long}`)],
    ['huge bad signature', v2Body(`${b64u({ alg: 'ES256' })}.${b64u({ notificationType: 'T' })}.${long}$`)]
  ]
  for (const [name, body] of bodies) {
    try {
      decode(body)
      t.fail(`${name}: should throw`)
    } catch (err) {
      t.ok(err instanceof AppError, `${name}: AppError`)
      const message = (err as Error).message
      t.notMatch(message, /A{100}/, `${name}: no long echo`)
      t.ok(message.length < 260, `${name}: ${message.length} characters`)
    }
  }
})

t.test('__proto__ and constructor keys pollute nothing and decode as plain data', async (t) => {
  const v1 = decode(Buffer.from('{"notification_type":"DID_RENEW","__proto__":{"polluted":1,"bid":"evil"},"constructor":{"prototype":{"polluted":2}},"unified_receipt":{"latest_receipt_info":[{"__proto__":{"transaction_id":"evil"}}]}}'))
  t.match(v1, { bundleId: null, transactionId: null })
  t.ok(Object.hasOwn(v1.payload, '__proto__'), 'kept as an own key')
  const v2 = decode(v2Body(`${b64u('{"alg":"ES256","__proto__":{"x":1}}')}.${b64u('{"notificationType":"TEST","__proto__":{"polluted":3},"data":{"__proto__":{"bundleId":"evil","environment":"Production"}}}')}.sig`))
  t.match(v2, { notificationType: 'TEST', bundleId: null, environment: null })
  t.equal(({} as Obj).polluted, undefined, 'Object.prototype untouched')
  t.equal(({} as Obj).x, undefined)
  t.equal(Object.getPrototypeOf(v2.payload), Object.prototype)
})

t.test('nesting deeper than MAX_JSON_DEPTH is refused in the body and in the JWS parts', async (t) => {
  t.equal(MAX_JSON_DEPTH, 64, 'the agreed limit')
  const arrays = (n: number): string => '['.repeat(n) + ']'.repeat(n)
  const objects = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n)
  const v1 = (inner: string): Buffer => Buffer.from(`{"notification_type":"X","deep":${inner}}`)
  // The outer object is a level: 63 inside it is exactly the limit.
  t.match(decode(v1(arrays(63))), { notificationType: 'X' }, '64 levels decode')
  t.match(decode(v1(objects(63))), { notificationType: 'X' }, '64 levels of objects decode')
  const header = b64u({ alg: 'ES256' })
  const payload = (data: string): string => b64u(`{"notificationType":"T","data":${data}}`)
  const deep = 200_000
  const cases: Array<[string, Buffer, RegExp]> = [
    ['65 levels of arrays', v1(arrays(64)), /Body is nested deeper than 64 levels/],
    ['65 levels of objects', v1(objects(64)), /Body is nested deeper than 64 levels/],
    ['200,000 levels in a V1 body', v1(arrays(deep)), /Body is nested deeper than 64/],
    ['a deep array body', Buffer.from(arrays(deep)), /Body is nested deeper/],
    ['a deep unterminated array', Buffer.from('['.repeat(deep)), /Body is nested deeper/],
    ['1 MB of "["', Buffer.alloc(1_048_576, '['), /Body is nested deeper/],
    ['a deep JWS payload', v2Body(`${header}.${payload(objects(deep))}.sig`), /signedPayload's payload is nested deeper than 64/],
    ['a JWS payload one level too deep', v2Body(`${header}.${payload(objects(64))}.sig`), /payload is nested deeper than 64/],
    ['a deep JWS header', v2Body(`${b64u(`{"alg":"ES256","x":${arrays(deep)}}`)}.${payload('{}')}.sig`), /signedPayload's header is nested deeper than 64/]
  ]
  for (const [name, body, message] of cases) {
    const e = expectCode(t, () => decode(body), 'BODY_TOO_DEEP', name)
    t.match(e?.message, message, `${name}: names the limit`)
    t.equal(e?.statusCode, 400, `${name}: 400`)
  }
  t.equal(decode(v2Body(`${header}.${payload(objects(63))}.sig`)).notificationType, 'T', 'a payload of exactly 64 levels decodes')
  // Brackets and escaped quotes inside strings are text, not levels.
  const inStrings = `{"notification_type":"X","s":"${'[{'.repeat(1000)}\\\\","t":"\\\\\\"${'['.repeat(100)}","deep":${arrays(62)}}`
  t.match(decode(Buffer.from(inStrings)), { notificationType: 'X' }, 'brackets inside strings do not count')
  t.same(JSON.parse(inStrings).t, '\\"' + '['.repeat(100), 'the escapes are the ones meant')
  // The nested JWS are only indexing material: a too-deep one is unreadable
  // like any other broken one (null fields), never a refusal of the notification.
  const deepNested = `${header}.${b64u(`{"transactionId":"1","x":${arrays(deep)}}`)}.sig`
  const n = decode(v2Body(signJws({ notificationType: 'T', data: { bundleId: 'b', signedTransactionInfo: deepNested, signedRenewalInfo: deepNested } })))
  t.match(n, { notificationType: 'T', bundleId: 'b', transactionId: null, originalTransactionId: null })
})

t.test('huge values: an outer indexed field over 256 characters is refused, a nested one is unindexed, 256 decode', async (t) => {
  const big = 'b'.repeat(2_000_000)
  const at = (n: number): string => 'x'.repeat(n)
  for (const [field, where] of [['notificationUUID', 'top'], ['notificationType', 'top'], ['subtype', 'top'], ['bundleId', 'data'], ['environment', 'data'], ['appAppleId', 'data']] as const) {
    const payload = (v: string): Obj => where === 'top' ? { notificationType: 'T', [field]: v } : { notificationType: 'T', data: { [field]: v } }
    const e = expectCode(t, () => decode(v2Body(signJws(payload(big)))), 'PAYLOAD_MALFORMED', `a 2 MB ${field}`)
    t.match(e?.message, new RegExp(`${field} is 2000000 characters long`), `${field}: says which field, not its value`)
    expectCode(t, () => decode(v2Body(signJws(payload(at(257))))), 'PAYLOAD_MALFORMED', `a 257-character ${field}`)
    t.doesNotThrow(() => decode(v2Body(signJws(payload(at(256))))), `a 256-character ${field} decodes`)
  }
  for (const field of ['notification_type', 'bid', 'environment', 'app_apple_id']) {
    expectCode(t, () => decode(v1Body({ notification_type: 'DID_RENEW', [field]: at(257) })), 'BODY_NOT_NOTIFICATION', `a V1 with a 257-character ${field}`)
  }
  const tx = signJws({ transactionId: at(257), originalTransactionId: at(300), productId: at(1000), appAccountToken: at(257) })
  t.match(decode(v2Body(signJws({ notificationType: 'T', data: { bundleId: 'b', signedTransactionInfo: tx } }))),
    { bundleId: 'b', transactionId: null, originalTransactionId: null, productId: null, appAccountToken: null }, 'long nested ids are unindexed, the notification decodes')
  const receipt = { latest_receipt_info: [{ transaction_id: at(257), original_transaction_id: '1', product_id: at(257) }] }
  t.match(decode(v1Body({ notification_type: 'DID_RENEW', unified_receipt: receipt })), { transactionId: null, originalTransactionId: '1', productId: null }, 'and so are long V1 receipt ids')
})

// mulberry32: a fixed seed makes every run try the same inputs.
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('garbage in: only AppError out, and decoded fields always have their types', async (t) => {
  const rand = prng(0x5eed)
  const int = (n: number): number => Math.floor(rand() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const randomValue = (depth = 0): unknown => {
    switch (int(depth > 2 ? 6 : 8)) {
      case 0: return null
      case 1: return rand() < 0.5
      case 2: return pick([0, -1, 1.5, 2 ** 60, 1698148900000, Number.MAX_VALUE])
      case 3: return pick(['', 'TEST', 'PROD', 'Sandbox', '__proto__', 'constructor', 'a.b.c', signJws(transaction), 'x'.repeat(int(300))])
      case 4: return Buffer.from(Array.from({ length: int(40) }, () => int(256))).toString('latin1')
      case 5: return `${b64u(randomValue(depth + 1) ?? {})}.${b64u(randomValue(depth + 1) ?? 0)}.${b64u('s')}`
      case 6: return Array.from({ length: int(4) }, () => randomValue(depth + 1))
      default: {
        const o: Obj = {}
        for (const k of ['notificationType', 'data', 'summary', 'environment', 'bundleId', 'signedTransactionInfo', 'signedRenewalInfo', 'latest_receipt_info', 'purchase_date_ms', 'transaction_id', '__proto__']) {
          if (rand() < 0.3) Object.defineProperty(o, k, { value: randomValue(depth + 1), enumerable: true, writable: true, configurable: true })
        }
        return o
      }
    }
  }
  const valid = [
    fixture('real/production-TEST-2024-10-17.json'),
    fixture('v1/did-renew-production.json'),
    v2Body(fixtureText('library-vectors/mock_signed_data/testNotification')),
    v2Body(signJws({ ...model('signedNotification'), data: { ...(model('signedNotification').data as Obj), signedTransactionInfo: signJws(transaction) } }))
  ]
  const mutate = (b: Buffer): Buffer => {
    const out = Buffer.from(b)
    const edits = 1 + int(8)
    for (let i = 0; i < edits; i++) out[int(out.length)] = pick([0x2e, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x00, 0xff, 0x41, 0x5c, int(256)])
    return int(4) === 0 ? out.subarray(0, int(out.length)) : out
  }
  const inputs: Buffer[] = []
  for (let i = 0; i < 400; i++) inputs.push(Buffer.from(Array.from({ length: int(64) }, () => int(256))))
  for (let i = 0; i < 800; i++) inputs.push(mutate(pick(valid)))
  for (let i = 0; i < 600; i++) {
    const payload = randomValue()
    const shaped = rand() < 0.5 && typeof payload === 'object' && payload !== null && !Array.isArray(payload)
      ? { ...payload, notificationType: pick(['TEST', 'DID_RENEW', 5, '', null]) }
      : payload
    inputs.push(v2Body(rand() < 0.5 ? signJws(shaped) : `${b64u(randomValue() ?? {})}.${b64u(shaped ?? null)}.${b64u('sig')}`))
    inputs.push(v1Body({ notification_type: pick(['DID_RENEW', 'CANCEL', '', 7]), ...((payload !== null && typeof payload === 'object') ? payload : {}), unified_receipt: randomValue(), environment: randomValue(), password: randomValue() }))
  }
  const nullableStrings = ['notificationUuid', 'subtype', 'environment', 'bundleId', 'appAppleId', 'originalTransactionId', 'transactionId', 'productId', 'appAccountToken', 'password'] as const
  const problems: string[] = []
  const codes = new Map<string, number>()
  for (const [i, input] of inputs.entries()) {
    try {
      const n = decode(input)
      codes.set('decoded', (codes.get('decoded') ?? 0) + 1)
      if (typeof n.notificationType !== 'string' || n.notificationType === '') problems.push(`#${i}: notificationType ${String(n.notificationType)}`)
      for (const k of nullableStrings) if (n[k] !== null && typeof n[k] !== 'string') problems.push(`#${i}: ${k} is ${typeof n[k]}`)
      if (n.signedDate !== null && !Number.isFinite(n.signedDate)) problems.push(`#${i}: signedDate ${n.signedDate}`)
      if ((n.version === 2) !== (n.jws !== null)) problems.push(`#${i}: version ${n.version} with jws ${String(n.jws)}`)
    } catch (err) {
      if (!(err instanceof AppError)) problems.push(`#${i}: ${String(err)}`)
      else codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
    }
  }
  t.same(problems, [], `${inputs.length} inputs: only AppError, only well-typed fields`)
  t.comment(JSON.stringify(Object.fromEntries(codes)))
  for (const code of ['decoded', 'BODY_NOT_JSON', 'BODY_NOT_NOTIFICATION', 'PAYLOAD_NOT_JWS', 'PAYLOAD_MALFORMED']) {
    t.ok((codes.get(code) ?? 0) > 0, `the garbage reached ${code}`)
  }
})

t.test('a repeated top-level key is refused in the body, the JWS header and the JWS payload; deeper repeats and the nested JWS are not', async (t) => {
  const jws = signJws({ notificationType: 'TEST', data: { bundleId: 'com.example' } })
  const cases: Array<[string, string, ErrorCode, RegExp]> = [
    ['signedPayload twice', `{"signedPayload":"${jws}","signedPayload":"${jws}"}`, 'BODY_DUPLICATE_KEY', /Body repeats the key "signedPayload"/],
    ['signedPayload once escaped', `{"signed\\u0050ayload":"x.y.z","signedPayload":"${jws}"}`, 'BODY_DUPLICATE_KEY', /Body repeats the key "signedPayload"/],
    ['signedPayload in another case', `{"signedPayload":"${jws}","SIGNEDPAYLOAD":"x.y.z"}`, 'BODY_DUPLICATE_KEY', /"SIGNEDPAYLOAD"/],
    ['signedPayload with a long s', `{"signedPayload":"${jws}","\\u017fignedPayload":"x.y.z"}`, 'BODY_DUPLICATE_KEY', /repeats the key/],
    ['password twice (V1)', '{"notification_type":"REFUND","password":"a","password":"b"}', 'BODY_DUPLICATE_KEY', /"password"/],
    ['V1 key in a raw UTF-8 spelling and an escaped one', '{"notification_type":"X","bïd":"a","b\\u00efd":"b"}', 'BODY_DUPLICATE_KEY', /"bïd"/],
    ['V2 beside notification_type', `{"signedPayload":"${jws}","notification_type":"REFUND"}`, 'BODY_AMBIGUOUS_VERSION', /V1's "notification_type" or "password"/],
    ['V2 beside Password', `{"Password":"x","signedPayload":"${jws}"}`, 'BODY_AMBIGUOUS_VERSION', /ignoring case/],
    ['V1 beside a signedPayload that is not a string', '{"notification_type":"DID_RENEW","signedPayload":5}', 'BODY_AMBIGUOUS_VERSION', /either/],
    ['alg twice in the header', v2Body(`${b64u('{"alg":"none","alg":"ES256"}')}.${jws.split('.')[1]}.sig`).toString(), 'BODY_DUPLICATE_KEY', /signedPayload's header repeats the key "alg"/],
    ['kid and a Kelvin-sign kid in the header', v2Body(`${b64u('{"alg":"ES256","kid":"a","\\u212aid":"b"}')}.${jws.split('.')[1]}.sig`).toString(), 'BODY_DUPLICATE_KEY', /header repeats the key "\u212aid"/],
    ['notificationType twice in the payload', v2Body(`${jws.split('.')[0]}.${b64u('{"notificationType":"TEST","notificationType":"REFUND"}')}.sig`).toString(), 'BODY_DUPLICATE_KEY', /payload repeats the key "notificationType"/],
    ['a 10,000-character repeated key', `{"notification_type":"X","${'k'.repeat(10_000)}":1,"${'k'.repeat(10_000)}":2}`, 'BODY_DUPLICATE_KEY', /k{100}"\.\.\. \(10000 characters\)/]
  ]
  for (const [name, body, code, message] of cases) {
    const e = expectCode(t, () => decode(Buffer.from(body)), code, name)
    t.match(e?.message, message, `${name}: says which key`)
    t.equal(e?.statusCode, 400, `${name}: 400`)
    t.ok((e?.message.length ?? 0) < 400, `${name}: a short message`)
  }
  // Not JSON, or not an object, is said first: the repeat is that body's lesser problem.
  expectCode(t, () => decode(Buffer.from('{"a":1,"a":2')), 'BODY_NOT_JSON', 'a repeat in a body that is not JSON')
  const fine: Array<[string, string]> = [
    ['repeats inside a nested object', `{"signedPayload":"${jws}","x":{"a":1,"a":2},"y":[{"b":1,"b":2}]}`],
    ['keys that only look alike in a string or an array', `{"notification_type":"X","s":"\\",\\"notification_type\\":1","l":["notification_type","notification_type"]}`],
    ['an unknown key beside signedPayload', `{"signedPayload":"${jws}","futureAppleField":"x"}`],
    ['a top-level array with repeated-looking strings', '["a","a"]']
  ]
  for (const [name, body] of fine) {
    try {
      decode(Buffer.from(body))
      t.pass(`${name}: decodes`)
    } catch (err) {
      t.not((err as AppError).code, 'BODY_DUPLICATE_KEY', `${name}: not a duplicate`)
      t.not((err as AppError).code, 'BODY_AMBIGUOUS_VERSION', `${name}: not ambiguous`)
    }
  }
  // The nested JWS only feed the index: a repeat there is read as JSON.parse reads it.
  const tx = signJws({ transactionId: '1', transactionId2: '2' }).replace(/^[^.]+\.[^.]+/, (m) => `${m.split('.')[0]}.${b64u('{"transactionId":"1","transactionId":"2"}')}`)
  t.equal(decode(v2Body(signJws({ notificationType: 'T', data: { signedTransactionInfo: tx } }))).transactionId, '2', 'a repeat inside signedTransactionInfo is indexing material, not a refusal')
})
