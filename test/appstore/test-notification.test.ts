import t from 'tap'
import { startApp } from '../helpers/app.ts'
import { appleWorld } from '../helpers/apple-keys.ts'
import { runCli } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

const ADMIN_TOKEN = 'admin-token-0123456789'

t.test('request-test-notification follows the TEST notification to storehook and every target, or says where it stopped', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const s = await startApp(t, {
    ...pki.env,
    CATCH_UP_INTERVAL_MS: '0',
    ADMIN_TOKEN,
    STOREHOOK_CONFIG: '',
    FORWARD_TARGETS: target.url,
    RETRY_GIVE_UP_AFTER_MS: '100'
  })
  const cliEnv = { ...pki.env, ...s.env, FORWARD_TARGETS: target.url }

  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  const ok = await runCli(['request-test-notification'], cliEnv)
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /The Sandbox TEST notification for com\.example reached storehook \(notification [0-9a-f-]+\) and every target: 127\.0\.0\.1:\d+\./)
  t.equal(target.received.length, 1)
  t.equal(JSON.parse(target.received[0]!.body.toString()).signedPayload.split('.').length, 3, 'the target got the signed TEST')

  api.deliverTestsTo(null, pki.chain, 'NO_RESPONSE')
  const lost = await runCli(['request-test-notification', '--environment', 'Sandbox'], cliEnv)
  t.equal(lost.code, 1)
  t.match(lost.stdout, /never reached storehook\. Apple's attempt: NO_RESPONSE\. Nothing answered: is the Server Notification URL set in App Store Connect/)

  api.deliverTestsTo(null, pki.chain, 'TLS_ISSUE')
  const tls = await runCli(['request-test-notification'], cliEnv)
  t.match(tls.stdout, /TLS_ISSUE\. The TLS handshake failed: the URL must be HTTPS .* TLS 1\.2/)

  const other = await startTarget()
  t.teardown(other.close)
  api.deliverTestsTo(other.url, pki.chain)
  const elsewhere = await runCli(['request-test-notification'], cliEnv)
  t.match(elsewhere.stdout, /delivered by Apple \(SUCCESS\), but not to this storehook: the Server Notification URL in App Store Connect points to another server/)

  const bad = await runCli(['request-test-notification', '--environment', 'both'], cliEnv)
  t.match(bad.stderr, /--environment must be Production or Sandbox/)

  // The same check from the admin API (the dashboard's button).
  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  const res = await fetch(`${s.url}/admin/api/test-notification`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ environment: 'Sandbox' })
  })
  t.equal(res.status, 200)
  const report = await res.json() as any
  t.match(report, { ok: true, outcome: 'reached-every-target', environment: 'Sandbox', bundleId: 'com.example', sendAttempts: [{ sendAttemptResult: 'SUCCESS' }] })
  t.match(report.targets, [{ status: 'delivered', attempts: 1 }])

  api.failNext(401, 1)
  const refused = await fetch(`${s.url}/admin/api/test-notification`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json()) as any
  t.match(refused, { ok: false, outcome: 'apple-api-error', status: 401, message: /401 Unauthorized/ })
})

t.test('a target that fails the TEST notification is named, with its error', async (t) => {
  const { api, pki } = await appleWorld(t)
  const broken = await startTarget((_r, _n, res) => { res.writeHead(500).end('nope') })
  t.teardown(broken.close)
  const env = { ...pki.env, CATCH_UP_INTERVAL_MS: '0', FORWARD_TARGETS: broken.url, RETRY_GIVE_UP_AFTER_MS: '100' }
  const s = await startApp(t, env)
  api.deliverTestsTo(`${s.url}/apple/notifications`, pki.chain)
  const r = await runCli(['request-test-notification'], { ...env, ...s.env })
  t.equal(r.code, 1)
  t.match(r.stdout, /reached storehook \(notification [0-9a-f-]+\), but target 127\.0\.0\.1:\d+ failed with HTTP 500/)
})
