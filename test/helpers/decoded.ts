// Decoded-document fixtures: every shape of Apple's notification, each
// nested JWS signed, with what Apple's own library decodes from it (the
// reference), and the JSON Schema validator every produced body must pass.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Environment, SignedDataVerifier } from '@apple/app-store-server-library'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { defaultRootCertificates } from '../../src/apple/verify.ts'
import { decodedNotificationSchema } from '../../src/decoded/schema.ts'
import { makeChain, signJws, signNotification, type Chain } from './apple-chain.ts'

const fixture = (path: string): Buffer => readFileSync(new URL(`../fixtures/apple/${path}`, import.meta.url))
const libraryVector = (name: string): string => fixture(`library-vectors/mock_signed_data/${name}`).toString('utf8').trim()
const model = (name: string): Record<string, unknown> => JSON.parse(fixture(`library-vectors/models/${name}.json`).toString('utf8')) as Record<string, unknown>

export const TEST_CA = fixture('library-vectors/certs/testCA.der')
export const REAL_BODY = fixture('real/production-TEST-2024-10-17.json')
export const V1_BODY = fixture('v1/did-renew-production.json')

export interface Case {
  name: string
  // The body as Apple POSTs it.
  body: Buffer
  // Apple's verifier for it: roots and the app it is built for.
  roots: Buffer[]
  app: { environment: 'Sandbox' | 'Production'; bundleId: string; appAppleId: number }
}

const SANDBOX = { environment: 'Sandbox', bundleId: 'com.example', appAppleId: 41234 } as const
const wrap = (jws: string): Buffer => Buffer.from(JSON.stringify({ signedPayload: jws }))

// A field Apple may add tomorrow, at every level a receiver reads.
export const TOMORROW = { fieldAppleAddsTomorrow: { nested: [1, 'two', null, true] } }
export const TOMORROW_CASE = 'signedNotification with fields Apple adds tomorrow'

function nestedJws (chain: Chain): Record<string, string> {
  const sign = (payload: Record<string, unknown>): string => signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload, key: chain.leaf.privateKey })
  return {
    transaction: sign({
      transactionId: '2000000812345678', originalTransactionId: '2000000800000001', webOrderLineItemId: '2000000012345678',
      bundleId: 'com.example', productId: 'com.example.monthly', subscriptionGroupIdentifier: '21234567', purchaseDate: 1698148800000,
      originalPurchaseDate: 1690000000000, expiresDate: 1700827200000, quantity: 1, type: 'Auto-Renewable Subscription',
      appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138', inAppOwnershipType: 'PURCHASED', signedDate: 1698148900000,
      environment: 'Sandbox', transactionReason: 'RENEWAL', storefront: 'USA', storefrontId: '143441', price: 4990, currency: 'USD',
      ...TOMORROW
    }),
    renewal: sign({
      originalTransactionId: '2000000800000001', autoRenewProductId: 'com.example.yearly', productId: 'com.example.monthly', autoRenewStatus: 1,
      isInBillingRetryPeriod: false, signedDate: 1698148900000, environment: 'Sandbox', recentSubscriptionStartDate: 1690000000000,
      renewalDate: 1700827200000, renewalPrice: 49990, currency: 'USD', eligibleWinBackOfferIds: ['winback1'], ...TOMORROW
    }),
    appTransaction: sign({
      receiptType: 'Sandbox', appAppleId: 41234, bundleId: 'com.example', applicationVersion: '1.2.3', versionExternalIdentifier: 0,
      receiptCreationDate: 1698148900000, originalPurchaseDate: 1690000000000, originalApplicationVersion: '1.0', appTransactionId: '704289572311431851',
      originalPlatform: 'iOS', deviceVerification: 'abc', deviceVerificationNonce: '7e3fb20b-4cdb-47cc-936d-99d65f608138', ...TOMORROW
    })
  }
}

// Apple's library models of each shape (data, summary,
// externalPurchaseToken, appData), made Sandbox (Apple's verifier skips
// every check for LocalTesting), their placeholders replaced by signed
// nested JWS, and the whole signed by a test chain; the library's own
// signed vectors; the real notification Apple sent.
export function cases (): { chain: Chain; all: Case[] } {
  const chain = makeChain()
  const nested = nestedJws(chain)
  const roots = [chain.root.der, TEST_CA]
  const shape = (name: string, section: string, fill: Record<string, unknown>, extra: Record<string, unknown> = {}): Case => {
    const m = model(name)
    const s = { ...(m[section] as Record<string, unknown>) }
    if (s.environment === 'LocalTesting') s.environment = 'Sandbox'
    Object.assign(s, fill)
    // Apple's models share one notificationUUID: each case is a notification of its own.
    const payload = { ...m, notificationUUID: randomUUID(), [section]: s, ...extra }
    const app = section === 'externalPurchaseToken'
      ? { environment: String(s.externalPurchaseId).startsWith('SANDBOX') ? 'Sandbox' as const : 'Production' as const, bundleId: 'com.example', appAppleId: s.appAppleId as number }
      : SANDBOX
    return { name: `${name} (${section})`, body: wrap(signNotification(chain, payload)), roots, app }
  }
  const both = { signedTransactionInfo: nested.transaction!, signedRenewalInfo: nested.renewal! }
  return {
    chain,
    all: [
      shape('signedNotification', 'data', both),
      { ...shape('signedNotification', 'data', { signedTransactionInfo: libraryVector('transactionInfo'), signedRenewalInfo: libraryVector('renewalInfo') }), name: 'signedNotification with Apple\'s library transaction and renewal vectors' },
      shape('signedConsumptionRequestNotification', 'data', both),
      shape('signedSummaryNotification', 'summary', {}),
      shape('signedExternalPurchaseTokenNotification', 'externalPurchaseToken', {}),
      shape('signedExternalPurchaseTokenSandboxNotification', 'externalPurchaseToken', {}),
      shape('signedRescindConsentNotification', 'appData', { signedAppTransactionInfo: nested.appTransaction! }),
      { ...shape('signedNotification', 'data', { ...both, ...TOMORROW }, TOMORROW), name: TOMORROW_CASE },
      { name: 'library vector testNotification', body: wrap(libraryVector('testNotification')), roots: [TEST_CA], app: { environment: 'Sandbox', bundleId: 'com.example', appAppleId: 1234 } },
      { name: 'real Production TEST from Apple', body: REAL_BODY, roots: defaultRootCertificates(), app: { environment: 'Production', bundleId: 'com.nineton.taller', appAppleId: 6450284872 } }
    ]
  }
}

const NESTED = [
  ['signedTransactionInfo', 'transactionInfo', 'verifyAndDecodeTransaction'],
  ['signedRenewalInfo', 'renewalInfo', 'verifyAndDecodeRenewalInfo'],
  ['signedAppTransactionInfo', 'appTransactionInfo', 'verifyAndDecodeAppTransaction']
] as const

// What a receiver using Apple's library gets: the verified notification,
// each nested JWS verified and decoded by Apple's code, put in its place.
export async function appleDecodes (c: Case): Promise<Record<string, unknown>> {
  const env = c.app.environment === 'Production' ? Environment.PRODUCTION : Environment.SANDBOX
  const verifier = new SignedDataVerifier(c.roots, false, env, c.app.bundleId, c.app.appAppleId)
  const signedPayload = (JSON.parse(c.body.toString('utf8')) as { signedPayload: string }).signedPayload
  const payload = await verifier.verifyAndDecodeNotification(signedPayload) as unknown as Record<string, unknown>
  const out: Record<string, unknown> = { ...payload }
  for (const section of ['data', 'summary', 'externalPurchaseToken', 'appData']) {
    const s = payload[section] as Record<string, unknown> | undefined
    if (s === undefined) continue
    const decoded: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(s)) {
      const nested = NESTED.find(([signed]) => signed === key)
      if (nested === undefined) decoded[key] = value
      else decoded[nested[1]] = await verifier[nested[2]](value as string)
    }
    out[section] = decoded
  }
  return out
}

// The JSON Schema, compiled by a real validator (strict: a schema keyword
// ajv does not know is an error, not a silent pass).
export function schemaValidator (): ((doc: unknown) => boolean) & { errors?: unknown } {
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  return ajv.compile(decodedNotificationSchema)
}
