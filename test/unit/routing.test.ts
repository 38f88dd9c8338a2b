import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { targetsFor } from '../../src/delivery/routing.ts'

t.test('targets receive what their filters match', async (t) => {
  const base = loadConfig({ FORWARD_TARGETS: 'https://rc.example.com/x' }).targets[0]!
  const targets = [
    base,
    { ...base, name: 'staging', filters: { environments: ['Sandbox'], notificationTypes: null, bundleIds: null } },
    { ...base, name: 'refunds', filters: { environments: null, notificationTypes: ['REFUND', 'REFUND_REVERSED'], bundleIds: ['com.a'] } }
  ]
  t.same(targetsFor(targets, { environment: 'Sandbox', notificationType: 'DID_RENEW', bundleId: 'com.a' }), ['rc.example.com', 'staging'])
  t.same(targetsFor(targets, { environment: 'Production', notificationType: 'REFUND', bundleId: 'com.a' }), ['rc.example.com', 'refunds'])
  t.same(targetsFor(targets, { environment: 'Production', notificationType: 'REFUND', bundleId: 'com.b' }), ['rc.example.com'])
  t.same(targetsFor(targets, { environment: null, notificationType: 'TEST', bundleId: null }), ['rc.example.com'], 'an unknown value never matches a filter')
})
