// The alerts that come from the App Store Server API and from storehook's
// own TLS (issue 17), triggered for real: the mock App Store Server API
// refusing the key (401) and then serving notifications Apple failed to
// deliver; a served certificate that expires within 14 days, then renewed.
import { writeFileSync } from 'node:fs'
import t from 'tap'
import { startApp, tempDir, until } from '../helpers/app.ts'
import { makeCert } from '../helpers/apple-chain.ts'
import { appleWorld } from '../helpers/apple-keys.ts'
import { keyPem, tlsEnv } from '../helpers/server-cert.ts'
import { startTarget } from '../helpers/target.ts'

const eventsOf = (bodies: Buffer[]): Array<[string, string]> => bodies.map((b) => JSON.parse(b.toString('utf8'))).map((a) => [a.event, a.subject])

t.test('appstore.rejected while Apple refuses the key (once per app and environment, ended by a run that works); catchup.found with the count of what Apple failed to deliver', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const rx = await startTarget(undefined, '/alerts')
  t.teardown(rx.close)
  // Both start-up runs (one per environment) and the first periodic ones are refused.
  api.failNext(401, 4)
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '300', CATCH_UP_MARGIN_MS: '1000', ALERT_CHECK_INTERVAL_MS: '50', ALERT_URLS: rx.url })
  await rx.waitFor(2)
  t.same(eventsOf(rx.received.map((r) => r.body)).sort(), [['appstore.rejected', 'com.example Production'], ['appstore.rejected', 'com.example Sandbox']])
  t.match(JSON.parse(rx.received[0]!.body.toString()), { severity: 'critical', text: /refused the configured key .*check APPLE_ISSUER_ID/ })
  t.notMatch(rx.received.map((r) => r.body.toString()).join(''), /eyJ|PRIVATE KEY/, 'no token or key in an alert')
  await until(async () => (await s.app.outbox.alertEpisodes()).every((e) => e.closedAt !== null), 15_000, 'the refusals ended by runs that work')
  t.equal(rx.received.length, 2, 'the end of a refusal is not a message of its own')

  api.add(pki.sign(), { signedDate: Date.now(), failed: true })
  await target.waitFor(1, 10_000)
  await rx.waitFor(3)
  t.match(JSON.parse(rx.received[2]!.body.toString()), { event: 'catchup.found', severity: 'warning', facts: { count: 1 }, text: /^The catch-up found 1 notification Apple could not deliver/ })
})

t.test('tls.expiring when the served certificate ends within 14 days; a renewed file ends the episode', async (t) => {
  const dir = tempDir(t)
  const { env } = tlsEnv(dir)
  const rx = await startTarget(undefined, '/alerts')
  t.teardown(rx.close)
  const s = await startApp(t, { ...env, ALERT_CHECK_INTERVAL_MS: '3600000', ALERT_URLS: rx.url })
  await s.app.alerts.monitor.check()
  await rx.waitFor(1)
  t.match(JSON.parse(rx.received[0]!.body.toString()), { event: 'tls.expiring', severity: 'warning', subject: 'certificate', text: /^The TLS certificate storehook serves expires in (23|24) h/ })
  t.same(await s.app.alerts.monitor.check(), [], 'told once')
  const renewed = makeCert({ name: '/CN=storehook-test', notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 90 * 86_400_000) })
  writeFileSync(env.TLS_KEY_PATH, keyPem(renewed))
  writeFileSync(env.TLS_CERT_PATH, renewed.pem)
  t.match(await s.app.alerts.monitor.check(), [{ kind: 'close', event: 'tls.expiring', tell: null }])
  t.equal(rx.received.length, 1)
})
