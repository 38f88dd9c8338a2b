import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { configFile, startApp } from '../helpers/app.ts'
import { settled, tally } from '../helpers/facts.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

t.test('a target with a signing secret gets Standard Webhooks headers that the reference verifier accepts', async (t) => {
  const signed = await startTarget((_r, n, res) => { res.writeHead(n === 1 ? 503 : 200).end() })
  t.teardown(signed.close)
  const config = configFile(t, { targets: [{ name: 'backend', url: signed.url, signingSecret: SECRET, headers: { 'X-Team': 'payments' } }] })
  const s = await startApp(t, { STOREHOOK_CONFIG: config })
  const v1 = v1Body()
  const { json } = await s.post(v1)
  const [first, second] = await signed.waitFor(2, 5000)
  const wh = new Webhook(SECRET)
  for (const r of [first!, second!]) {
    t.ok(r.body.equals(v1), 'the body is still byte for byte Apple\'s')
    t.doesNotThrow(() => wh.verify(r.body, r.headers as Record<string, string>), 'the reference implementation verifies the signature')
    t.equal(r.headers['webhook-id'], json.id, 'webhook-id is the notification id')
    t.equal(r.headers['x-team'], 'payments', 'the target\'s own headers are sent')
  }
  t.equal(first!.headers['webhook-id'], second!.headers['webhook-id'], 'webhook-id is stable across retries')
  const tampered = Buffer.concat([v1, Buffer.from(' ')])
  t.throws(() => wh.verify(tampered, first!.headers as Record<string, string>), 'a changed body does not verify')
  t.throws(() => new Webhook('whsec_' + Buffer.from('another secret').toString('base64')).verify(v1, first!.headers as Record<string, string>), 'another secret does not verify')
})

t.test('per-target filters route by environment, type and bundle', async (t) => {
  const everything = await startTarget()
  const staging = await startTarget()
  const refunds = await startTarget()
  for (const x of [everything, staging, refunds]) t.teardown(x.close)
  const config = configFile(t, {
    targets: [
      { name: 'revenuecat', url: everything.url },
      { name: 'staging', url: staging.url, filters: { environments: ['Sandbox'] } },
      { name: 'refunds', url: refunds.url, filters: { notificationTypes: ['REFUND'], bundleIds: ['com.example.app'] } }
    ]
  })
  const s = await startApp(t, { STOREHOOK_CONFIG: config })
  await s.post(v2Body({ environment: 'Sandbox', notificationType: 'DID_RENEW' }))
  await s.post(v2Body({ environment: 'Production', notificationType: 'REFUND' }))
  await s.post(v2Body({ environment: 'Production', notificationType: 'REFUND', bundleId: 'com.other' }))
  await s.post(v2Body({ environment: 'Production', notificationType: 'SOMETHING_APPLE_ADDS_NEXT_YEAR' }))
  // Routing writes the delivery rows in the commit before each 200: settled,
  // they are every request each target will get.
  await settled(s)
  const sent = (n: number): Awaited<ReturnType<typeof tally>> => ({ deliveries: n, delivered: n, dead: 0, pending: 0, attempts: n, recorded: n })
  t.same([await tally(s, 'revenuecat'), await tally(s, 'staging'), await tally(s, 'refunds')], [sent(4), sent(1), sent(1)], 'routed rows, each sent once')
  t.equal(everything.received.length, 4, 'the unfiltered target gets everything, unknown types included')
  t.equal(staging.received.length, 1, 'staging gets only Sandbox')
  t.equal(refunds.received.length, 1, 'the refunds target gets only REFUND of its bundle')
})
