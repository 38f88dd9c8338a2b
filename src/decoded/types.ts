// The body a target with "payload": "decoded" receives: storehook's document
// of one notification, Apple's signed payload with every nested JWS decoded
// in place. The same document as schemas/decoded-notification.v1.json (also
// served at /schemas/decoded-notification.v1.json), as TypeScript types for
// receivers: `import type { DecodedNotification } from 'storehook/decoded'`.
// Self-contained on purpose (no import, types only): the package exports
// this source file as it is, and a receiver's compiler reads it as one.
//
// Apple's objects are typed with the fields Apple documents today, all
// optional as in Apple's own library, and open: a field Apple adds tomorrow
// is in the document as Apple sent it. Dates are Apple's, milliseconds since
// 1970 (UTC), and numbers carry Apple's exact value.

// A field Apple adds, which storehook passes through as it is.
export type Unknown = Record<string, unknown>

export interface TransactionInfo extends Unknown {
  originalTransactionId?: string
  transactionId?: string
  webOrderLineItemId?: string
  bundleId?: string
  productId?: string
  subscriptionGroupIdentifier?: string
  purchaseDate?: number
  originalPurchaseDate?: number
  expiresDate?: number
  quantity?: number
  type?: string
  appAccountToken?: string
  inAppOwnershipType?: string
  signedDate?: number
  revocationReason?: number
  revocationDate?: number
  isUpgraded?: boolean
  offerType?: number
  offerIdentifier?: string
  environment?: string
  storefront?: string
  storefrontId?: string
  transactionReason?: string
  currency?: string
  price?: number
  offerDiscountType?: string
  appTransactionId?: string
  offerPeriod?: string
}

export interface RenewalInfo extends Unknown {
  expirationIntent?: number
  originalTransactionId?: string
  autoRenewProductId?: string
  productId?: string
  autoRenewStatus?: number
  isInBillingRetryPeriod?: boolean
  priceIncreaseStatus?: number
  gracePeriodExpiresDate?: number
  offerType?: number
  offerIdentifier?: string
  signedDate?: number
  environment?: string
  recentSubscriptionStartDate?: number
  renewalDate?: number
  currency?: string
  renewalPrice?: number
  offerDiscountType?: string
  eligibleWinBackOfferIds?: string[]
  appAccountToken?: string
  appTransactionId?: string
  offerPeriod?: string
}

export interface AppTransactionInfo extends Unknown {
  receiptType?: string
  appAppleId?: number
  bundleId?: string
  applicationVersion?: string
  versionExternalIdentifier?: number
  receiptCreationDate?: number
  originalPurchaseDate?: number
  originalApplicationVersion?: string
  deviceVerification?: string
  deviceVerificationNonce?: string
  preorderDate?: number
  appTransactionId?: string
  originalPlatform?: string
}

// A nested JWS that does not decode (not three dotted parts, or its payload
// is not a JSON object) stays as Apple's field, the string it was, with no
// decoded field beside it. A verified notification's never do.
export interface NotificationData extends Unknown {
  environment?: string
  appAppleId?: number
  bundleId?: string
  bundleVersion?: string
  status?: number
  consumptionRequestReason?: string
  transactionInfo?: TransactionInfo
  renewalInfo?: RenewalInfo
  signedTransactionInfo?: string
  signedRenewalInfo?: string
}

export interface Summary extends Unknown {
  environment?: string
  appAppleId?: number
  bundleId?: string
  productId?: string
  requestIdentifier?: string
  storefrontCountryCodes?: string[]
  succeededCount?: number
  failedCount?: number
}

export interface ExternalPurchaseToken extends Unknown {
  externalPurchaseId?: string
  tokenCreationDate?: number
  appAppleId?: number
  bundleId?: string
}

export interface AppData extends Unknown {
  appAppleId?: number
  bundleId?: string
  environment?: string
  appTransactionInfo?: AppTransactionInfo
  signedAppTransactionInfo?: string
}

// Apple's signed payload, decoded. One of data, summary,
// externalPurchaseToken or appData is present, by notification type.
export interface NotificationPayload extends Unknown {
  notificationType: string
  subtype?: string
  notificationUUID?: string
  version?: string
  signedDate?: number
  data?: NotificationData
  summary?: Summary
  externalPurchaseToken?: ExternalPurchaseToken
  appData?: AppData
}

interface Envelope {
  schemaVersion: 1
  // storehook's id of the notification: the webhook-id and
  // X-Storehook-Notification-Id headers, the same on every retry.
  id: string
  // How it reached storehook: Apple's POST, the catch-up or a backfill from
  // Apple's notification history, or a release from the quarantine.
  source: 'webhook' | 'catch-up' | 'backfill' | 'quarantine'
  // When storehook received it, in milliseconds since 1970 (UTC).
  receivedAt: number
  // What storehook concluded of Apple's signature (V2) or the shared secret
  // (V1): verified; unverified (it failed, and VERIFY_SIGNATURES=log let it
  // in); or unchecked (VERIFY_SIGNATURES=off, or a V1 with no shared secret
  // to check). `reason` says why when it is not verified.
  verification: { status: 'verified' | 'unverified' | 'unchecked'; reason: string | null }
}

export interface DecodedNotificationV2 extends Envelope {
  notificationVersion: 2
  notification: NotificationPayload
  // Apple's JWS as Apple sent it, for a receiver that checks Apple's signature itself.
  signedPayload: string
}

// A V1 notification (deprecated by Apple): its JSON object, without its
// `password` (the app's shared secret, which a target must not need).
export interface DecodedNotificationV1 extends Envelope {
  notificationVersion: 1
  notification: Unknown & { notification_type: string }
  signedPayload: null
}

export type DecodedNotification = DecodedNotificationV2 | DecodedNotificationV1
