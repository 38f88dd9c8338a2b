import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, tempDir, until } from '../helpers/app.ts'
import { makeChain, makeRoot, notificationPayload, signNotification } from '../helpers/apple-chain.ts'
import { runCli } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

t.test('refused JWS are quarantined with their reason and released after the configuration is fixed', async (t) => {
  const dir = tempDir(t)
  const root = makeRoot()
  const rootPath = join(dir, 'root.pem')
  writeFileSync(rootPath, root.pem)
  const chain = makeChain({ root })
  const target = await startTarget()
  t.teardown(target.close)
  const env = { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath, APPLE_BUNDLE_IDS: 'com.example', FORWARD_TARGETS: target.url, POLL_INTERVAL_MS: '50' }
  const s = await startApp(t, env)

  // A bundle the operator forgot to list: refused, but kept.
  const body = JSON.stringify({ signedPayload: signNotification(chain, notificationPayload({ bundleId: 'com.example.pro', notificationUUID: randomUUID() })) })
  const refused = await s.post(body)
  t.equal(refused.status, 403)
  t.equal(refused.json.code, 'BUNDLE_NOT_ALLOWED')
  // Not a JWS at all: refused and not kept.
  t.equal((await s.post('{"signedPayload":"garbage"}')).status, 400)

  const cliEnv = { ...env, ...s.env, PATH: process.env.PATH ?? '' }
  const listed = await runCli(['quarantine', 'list'], cliEnv)
  t.equal(listed.code, 0)
  t.match(listed.stdout, /^1\t.*\tBUNDLE_NOT_ALLOWED\tTEST\tSandbox\tcom\.example\.pro\t.*APPLE_BUNDLE_IDS/)
  t.equal(listed.stdout.trim().split('\n').length, 1, 'only the well-formed JWS was quarantined')
  t.equal(target.received.length, 0, 'nothing refused was forwarded')

  // Released under the same configuration: still refused.
  const again = await runCli(['quarantine', 'release', '1'], cliEnv)
  t.equal(again.code, 1)
  t.match(again.stdout, /1: not released: Bundle ID "com\.example\.pro" is not in APPLE_BUNDLE_IDS/)

  // The operator fixes APPLE_BUNDLE_IDS and releases it: the running server forwards it.
  const fixed = await runCli(['quarantine', 'release', '1'], { ...cliEnv, APPLE_BUNDLE_IDS: 'com.example,com.example.pro' })
  t.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
  t.match(fixed.stdout, /^1: released as [0-9a-f-]{36} to 127\.0\.0\.1:\d+/)
  const [got] = await target.waitFor(1, 5000)
  t.equal(got!.body.toString(), body, 'the exact refused bytes are what the target receives')
  const row = (await s.facts.get<{ source: string; verification: string }>(sql`SELECT source, verification FROM notifications`))
  t.same(row, { source: 'quarantine', verification: 'verified' })
  t.match((await runCli(['quarantine'], cliEnv)).stdout, /released as /)
})

t.test('--force releases a payload that still does not verify, marked unverified', async (t) => {
  const dir = tempDir(t)
  const root = makeRoot()
  const rootPath = join(dir, 'root.pem')
  writeFileSync(rootPath, root.pem)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath })
  t.equal((await s.post(JSON.stringify({ signedPayload: signNotification(makeChain(), notificationPayload({ notificationUUID: randomUUID() })) }))).status, 403)
  const r = await runCli(['quarantine', 'release', '1', '--force'], { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath, ...s.env })
  t.equal(r.code, 0, r.stdout + r.stderr)
  await until(async () => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!.n === 1)
  const row = (await s.facts.get<{ verification: string; verification_error: string }>(sql`SELECT verification, verification_error FROM notifications`))
  t.equal(row!.verification, 'unverified')
  t.match(row!.verification_error, /chain_untrusted/)
})

t.test('the quarantine is capped in count and bytes, oldest dropped first', async (t) => {
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', QUARANTINE_MAX_ITEMS: '3', QUARANTINE_MAX_BYTES: '100000' })
  const stranger = makeChain()
  const uuids: string[] = []
  for (let i = 0; i < 6; i++) {
    const uuid = randomUUID()
    uuids.push(uuid)
    t.equal((await s.post(JSON.stringify({ signedPayload: signNotification(stranger, notificationPayload({ notificationUUID: uuid })) }))).status, 403)
  }
  const kept = (await s.facts.all<{ notification_uuid: string }>(sql`SELECT notification_uuid FROM quarantine ORDER BY id`))
  t.same(kept.map((r) => r.notification_uuid), uuids.slice(3), 'the three newest are kept')
  const big = JSON.stringify({ signedPayload: signNotification(stranger, { ...notificationPayload({ notificationUUID: randomUUID() }), pad: 'x'.repeat(60_000) }) })
  t.equal((await s.post(big)).status, 403)
  const bytes = (await s.facts.get<{ n: number; b: number }>(sql`SELECT count(*) AS n, sum(bytes) AS b FROM quarantine`))!
  t.ok(bytes.b <= 100_000, `bytes stay under the cap (${bytes.b})`)
  t.ok(bytes.n >= 1 && bytes.n <= 3)
})
