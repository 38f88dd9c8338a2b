// Apple's documented values for the fields storehook turns into /metrics
// labels. A label value is either one of these or `other`: anyone can POST to
// storehook's public URL, and a value taken as-is from a payload would let
// them add one series per request until the scrape is too large to read.
//
// Sources: V2 types, subtypes and environments are those of Apple's own
// library, @apple/app-store-server-library 3.1.0 (models/NotificationTypeV2,
// Subtype, Environment); test/unit/vocabulary.test.ts fails when an update of
// that library adds a value missing here. V1 types are those of Apple's
// `notification_type` page (App Store Server Notifications V1, which the
// library does not model), RENEWAL included: documented, though Apple replaced
// it with DID_RECOVER in 2021. The V1 decoder maps `PROD` to Production, so
// both versions share the environment list (src/db/vocabulary.ts, where the
// dashboard and the storage layer find it too).
import { ENVIRONMENTS } from '../db/vocabulary.ts'

export const OTHER = 'other'

export const VOCABULARY = {
  notificationTypesV2: [
    'CONSUMPTION_REQUEST', 'DID_CHANGE_RENEWAL_PREF', 'DID_CHANGE_RENEWAL_STATUS', 'DID_FAIL_TO_RENEW',
    'DID_RENEW', 'EXPIRED', 'EXTERNAL_PURCHASE_TOKEN', 'GRACE_PERIOD_EXPIRED', 'METADATA_UPDATE',
    'MIGRATION', 'OFFER_REDEEMED', 'ONE_TIME_CHARGE', 'PRICE_CHANGE', 'PRICE_INCREASE', 'REFUND',
    'REFUND_DECLINED', 'REFUND_REVERSED', 'RENEWAL_EXTENDED', 'RENEWAL_EXTENSION', 'RESCIND_CONSENT',
    'REVOKE', 'SUBSCRIBED', 'TEST'
  ],
  notificationTypesV1: [
    'CANCEL', 'CONSUMPTION_REQUEST', 'DID_CHANGE_RENEWAL_PREF', 'DID_CHANGE_RENEWAL_STATUS',
    'DID_FAIL_TO_RENEW', 'DID_RECOVER', 'DID_RENEW', 'INITIAL_BUY', 'INTERACTIVE_RENEWAL',
    'PRICE_INCREASE_CONSENT', 'REFUND', 'RENEWAL', 'REVOKE'
  ],
  subtypes: [
    'ACCEPTED', 'AUTO_RENEW_DISABLED', 'AUTO_RENEW_ENABLED', 'BILLING_RECOVERY', 'BILLING_RETRY',
    'DOWNGRADE', 'FAILURE', 'GRACE_PERIOD', 'INITIAL_BUY', 'PENDING', 'PRICE_INCREASE',
    'PRODUCT_NOT_FOR_SALE', 'RESUBSCRIBE', 'SUMMARY', 'UNREPORTED', 'UPGRADE', 'VOLUNTARY'
  ],
  environments: ENVIRONMENTS
} as const satisfies Record<string, readonly string[]>

export type VocabularyField = keyof typeof VOCABULARY

// Sets, not an object lookup: `table['constructor']` would find Object's.
const known: Record<VocabularyField, ReadonlySet<string>> = {
  notificationTypesV2: new Set(VOCABULARY.notificationTypesV2),
  notificationTypesV1: new Set(VOCABULARY.notificationTypesV1),
  subtypes: new Set(VOCABULARY.subtypes),
  environments: new Set(VOCABULARY.environments)
}

// The label value for a payload's field: the value itself when Apple
// documents it, `other` for anything else (unknown, missing, not a string).
export function vocabularyLabel (field: VocabularyField, value: unknown): string {
  return typeof value === 'string' && known[field].has(value) ? value : OTHER
}

// A notification's type, checked against the list of its own version.
export function notificationTypeLabel (version: 1 | 2, value: unknown): string {
  return vocabularyLabel(version === 1 ? 'notificationTypesV1' : 'notificationTypesV2', value)
}
