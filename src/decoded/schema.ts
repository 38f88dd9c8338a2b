// The JSON Schema (draft 2020-12) of the decoded document (types.ts says
// the same in TypeScript). The repository keeps it as
// schemas/decoded-notification.v1.json, which test/decoded/schema.test.ts
// holds equal to this object, and storehook serves it at SCHEMA_PATH: a
// constant here rather than a file read at run time, so the single binary
// and Deno serve it too. Apple's objects list the fields Apple documents and
// accept any other (additionalProperties is left open): a field Apple adds
// must not make a receiver's validation fail.
export const SCHEMA_PATH = '/schemas/decoded-notification.v1.json'

type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'string[]'

function fields (table: Record<string, Kind>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(table).map(([k, kind]) =>
    [k, kind === 'string[]' ? { type: 'array', items: { type: 'string' } } : { type: kind }]))
}

const appleObject = (description: string, table: Record<string, Kind>): Record<string, unknown> => ({ type: 'object', description, properties: fields(table) })

// Apple's dates: milliseconds since 1970, UTC, as Apple sends them.
const transactionInfo = appleObject('signedTransactionInfo, decoded (Apple: JWSTransactionDecodedPayload).', {
  originalTransactionId: 'string', transactionId: 'string', webOrderLineItemId: 'string', bundleId: 'string', productId: 'string',
  subscriptionGroupIdentifier: 'string', purchaseDate: 'integer', originalPurchaseDate: 'integer', expiresDate: 'integer', quantity: 'integer',
  type: 'string', appAccountToken: 'string', inAppOwnershipType: 'string', signedDate: 'integer', revocationReason: 'integer',
  revocationDate: 'integer', isUpgraded: 'boolean', offerType: 'integer', offerIdentifier: 'string', environment: 'string', storefront: 'string',
  storefrontId: 'string', transactionReason: 'string', currency: 'string', price: 'integer', offerDiscountType: 'string',
  appTransactionId: 'string', offerPeriod: 'string'
})

const renewalInfo = appleObject('signedRenewalInfo, decoded (Apple: JWSRenewalInfoDecodedPayload).', {
  expirationIntent: 'integer', originalTransactionId: 'string', autoRenewProductId: 'string', productId: 'string', autoRenewStatus: 'integer',
  isInBillingRetryPeriod: 'boolean', priceIncreaseStatus: 'integer', gracePeriodExpiresDate: 'integer', offerType: 'integer',
  offerIdentifier: 'string', signedDate: 'integer', environment: 'string', recentSubscriptionStartDate: 'integer', renewalDate: 'integer',
  currency: 'string', renewalPrice: 'integer', offerDiscountType: 'string', eligibleWinBackOfferIds: 'string[]', appAccountToken: 'string',
  appTransactionId: 'string', offerPeriod: 'string'
})

const appTransactionInfo = appleObject('signedAppTransactionInfo, decoded (Apple: AppTransaction).', {
  receiptType: 'string', appAppleId: 'integer', bundleId: 'string', applicationVersion: 'string', versionExternalIdentifier: 'integer',
  receiptCreationDate: 'integer', originalPurchaseDate: 'integer', originalApplicationVersion: 'string', deviceVerification: 'string',
  deviceVerificationNonce: 'string', preorderDate: 'integer', appTransactionId: 'string', originalPlatform: 'string'
})

const undecoded = (what: string): Record<string, unknown> => ({
  type: 'string', description: `Present only when this nested JWS did not decode to an object; otherwise it is ${what}.`
})

const envelope = {
  schemaVersion: { const: 1 },
  id: { type: 'string', minLength: 1, description: 'storehook\'s notification id: the webhook-id and X-Storehook-Notification-Id headers, the same on every retry.' },
  source: { enum: ['webhook', 'catch-up', 'backfill', 'quarantine'], description: 'How the notification reached storehook.' },
  receivedAt: { type: 'integer', description: 'When storehook received it, in milliseconds since 1970 (UTC).' },
  verification: {
    type: 'object',
    required: ['status', 'reason'],
    additionalProperties: false,
    properties: {
      status: { enum: ['verified', 'unverified', 'unchecked'] },
      reason: { type: ['string', 'null'], description: 'Why it is not verified; null when it is.' }
    }
  }
}

// The document of a V2 or a V1 notification: the same envelope, each its own notification.
const documentOf = (version: 1 | 2, notification: Record<string, unknown>, signedPayload: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  required: [...Object.keys(envelope), 'notificationVersion', 'notification', 'signedPayload'],
  properties: { ...envelope, notificationVersion: { const: version }, notification, signedPayload }
})

export const decodedNotificationSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:storehook:decoded-notification:v1',
  title: 'storehook decoded notification, schema version 1',
  description: 'The body a target with "payload": "decoded" receives, signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature).',
  type: 'object',
  oneOf: [{ $ref: '#/$defs/v2' }, { $ref: '#/$defs/v1' }],
  $defs: {
    v2: documentOf(2, { $ref: '#/$defs/notificationPayload' },
      { type: 'string', description: 'Apple\'s JWS as Apple sent it, for a receiver that checks Apple\'s signature itself.' }),
    v1: documentOf(1, {
      type: 'object',
      description: 'The V1 notification\'s JSON object as Apple sent it, without its password (the shared secret).',
      required: ['notification_type'],
      properties: { notification_type: { type: 'string' }, password: false }
    }, { type: 'null' }),
    notificationPayload: {
      type: 'object',
      description: 'Apple\'s signed payload, decoded (Apple: ResponseBodyV2DecodedPayload). One of data, summary, externalPurchaseToken, appData is present.',
      required: ['notificationType'],
      properties: {
        ...fields({ notificationType: 'string', subtype: 'string', notificationUUID: 'string', version: 'string', signedDate: 'integer' }),
        data: {
          type: 'object',
          properties: {
            ...fields({ environment: 'string', appAppleId: 'integer', bundleId: 'string', bundleVersion: 'string', status: 'integer', consumptionRequestReason: 'string' }),
            transactionInfo: { $ref: '#/$defs/transactionInfo' },
            renewalInfo: { $ref: '#/$defs/renewalInfo' },
            signedTransactionInfo: undecoded('transactionInfo'),
            signedRenewalInfo: undecoded('renewalInfo')
          }
        },
        summary: {
          type: 'object',
          properties: fields({
            environment: 'string', appAppleId: 'integer', bundleId: 'string', productId: 'string', requestIdentifier: 'string',
            storefrontCountryCodes: 'string[]', succeededCount: 'integer', failedCount: 'integer'
          })
        },
        externalPurchaseToken: {
          type: 'object',
          properties: fields({ externalPurchaseId: 'string', tokenCreationDate: 'integer', appAppleId: 'integer', bundleId: 'string' })
        },
        appData: {
          type: 'object',
          properties: {
            ...fields({ appAppleId: 'integer', bundleId: 'string', environment: 'string' }),
            appTransactionInfo: { $ref: '#/$defs/appTransactionInfo' },
            signedAppTransactionInfo: undecoded('appTransactionInfo')
          }
        }
      }
    },
    transactionInfo,
    renewalInfo,
    appTransactionInfo
  }
} as const

// The schema's text as the repository keeps it and storehook serves it.
export const schemaText = (): string => JSON.stringify(decodedNotificationSchema, null, 2) + '\n'
