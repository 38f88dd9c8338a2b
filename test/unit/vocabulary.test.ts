// The label vocabulary (src/apple/vocabulary.ts): documented values map to
// themselves, anything else to `other`, and the V2 lists stay those of
// Apple's own library, so an update of the library that adds a type fails here.
import { Environment, NotificationTypeV2, Subtype } from '@apple/app-store-server-library'
import t from 'tap'
import { notificationTypeLabel, OTHER, VOCABULARY, vocabularyLabel } from '../../src/apple/vocabulary.ts'
import { deliveries, historyRuns, notifications } from '../../src/db/schema.ts'
import { API_ENVIRONMENTS, DELIVERY_STATUSES, ENVIRONMENTS, HISTORY_RUN_KINDS, NOTIFICATION_SOURCES, VERIFICATION_STATUSES } from '../../src/db/vocabulary.ts'

const sorted = (values: Iterable<string>): string[] => [...values].sort()

t.test('the V2 lists are exactly those of @apple/app-store-server-library', async (t) => {
  t.same(sorted(VOCABULARY.notificationTypesV2), sorted(Object.values(NotificationTypeV2)))
  t.same(sorted(VOCABULARY.subtypes), sorted(Object.values(Subtype)))
  t.same(sorted(VOCABULARY.environments), sorted(Object.values(Environment)))
})

t.test('every documented value is its own label', async (t) => {
  for (const [field, values] of Object.entries(VOCABULARY) as Array<[keyof typeof VOCABULARY, readonly string[]]>) {
    for (const value of values) t.equal(vocabularyLabel(field, value), value, `${field}: ${value}`)
  }
  t.equal(notificationTypeLabel(1, 'INITIAL_BUY'), 'INITIAL_BUY')
  t.equal(notificationTypeLabel(2, 'SUBSCRIBED'), 'SUBSCRIBED')
})

t.test('anything else is other', async (t) => {
  const strangers: unknown[] = [
    'PROD', 'production', 'SANDBOX', '', ' Sandbox', 'Sandbox\n', 'ZZ_MADE_UP', 'did_renew',
    'constructor', '__proto__', 'toString', 'hasOwnProperty', null, undefined, 42, {}, ['Sandbox'], 'x'.repeat(10_000)
  ]
  for (const value of strangers) {
    t.equal(vocabularyLabel('environments', value), OTHER, `environment ${JSON.stringify(value)?.slice(0, 40)}`)
    t.equal(vocabularyLabel('notificationTypesV2', value), OTHER, `type ${JSON.stringify(value)?.slice(0, 40)}`)
  }
  t.equal(notificationTypeLabel(2, 'INITIAL_BUY'), OTHER, 'a V1-only type is not a V2 type')
  t.equal(notificationTypeLabel(1, 'SUBSCRIBED'), OTHER, 'a V2-only type is not a V1 type')
  t.equal(vocabularyLabel('subtypes', 'SUMMARY'), 'SUMMARY')
  t.equal(vocabularyLabel('subtypes', 'DID_RENEW'), OTHER, 'a type is not a subtype')
})

t.test('the table columns take their values from storehook\'s vocabulary (src/db/vocabulary.ts), not from lists of their own', async (t) => {
  // The same arrays, not equal copies: a list written again in the schema
  // would drift from the one the routes, the dashboard and the code use.
  t.equal(deliveries.status.enumValues, DELIVERY_STATUSES)
  t.equal(notifications.verification.enumValues, VERIFICATION_STATUSES)
  t.equal(notifications.source.enumValues, NOTIFICATION_SOURCES)
  t.equal(historyRuns.kind.enumValues, HISTORY_RUN_KINDS)
  t.equal(historyRuns.environment.enumValues, API_ENVIRONMENTS)
  t.equal(VOCABULARY.environments, ENVIRONMENTS, 'the metrics labels use the same environment list')
})
