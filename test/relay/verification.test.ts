import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { ADMIN_TOKEN } from '../helpers/admin.ts'
import { startApp, tempDir } from '../helpers/app.ts'
import { hostOf, settled, tally } from '../helpers/facts.ts'
import { decodePart, makeChain, makeRoot, notificationPayload, replacePart, signJws, signNotification, type Chain } from '../helpers/apple-chain.ts'
import { get, login } from '../helpers/dashboard.ts'
import { v1Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

const REAL = readFileSync(new URL('../fixtures/apple/real/production-TEST-2024-10-17.json', import.meta.url))
const body = (signedPayload: string): string => JSON.stringify({ signedPayload })

// A private root written where APPLE_ROOT_CERTS can point, and a signer under it.
function trustedPki (t: Parameters<typeof tempDir>[0]): { rootPath: string; chain: Chain; root: ReturnType<typeof makeRoot>; sign: (p?: Record<string, unknown>) => string } {
  const root = makeRoot()
  const rootPath = join(tempDir(t), 'root.pem')
  writeFileSync(rootPath, root.pem)
  const chain = makeChain({ root })
  return { rootPath, chain, root, sign: (p = notificationPayload({ notificationUUID: randomUUID() })) => signNotification(chain, p) }
}

t.test('under enforce (the default), only chains to a trusted root are accepted and forwarded', async (t) => {
  const pki = trustedPki(t)
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: pki.rootPath, FORWARD_TARGETS: target.url })

  const good = await s.post(body(pki.sign()))
  t.equal(good.status, 200, 'a well-signed notification is accepted')

  const payload = notificationPayload({ notificationUUID: randomUUID() })
  const { root, chain } = pki
  const forged = (opts: Parameters<typeof makeChain>[0]): string => signNotification(makeChain({ root, ...opts }), payload)
  const forgeries: Array<[string, string, string]> = [
    ['unknown root', signNotification(makeChain(), payload), 'chain_untrusted'],
    ['intermediate not a CA', forged({ intermediate: { ca: false } }), 'intermediate_not_ca'],
    ['intermediate without its OID', forged({ intermediate: { oids: [] } }), 'intermediate_oid_missing'],
    ['leaf without its OID', forged({ leaf: { oids: [] } }), 'leaf_oid_missing'],
    ['leaf expired at signedDate', forged({ leaf: { notAfter: new Date(Number(payload.signedDate) - 30 * 86_400_000) } }), 'certificate_expired'],
    ['leaf not yet valid at signedDate', forged({ leaf: { notBefore: new Date(Number(payload.signedDate) + 30 * 86_400_000) } }), 'certificate_not_yet_valid'],
    ['chain of one', signNotification(chain, payload, chain.x5c.slice(0, 1)), 'chain_length'],
    ['chain of two', signNotification(chain, payload, chain.x5c.slice(0, 2)), 'chain_length'],
    ['chain of four', signNotification(chain, payload, [...chain.x5c, chain.x5c[2]]), 'chain_length'],
    ['missing x5c', signJws({ header: { alg: 'ES256' }, payload, key: chain.leaf.privateKey }), 'x5c_missing'],
    ['alg HS256 keyed with the certificate', signJws({ header: { alg: 'HS256', x5c: chain.x5c }, payload, key: chain.leaf.pem }), 'alg_unsupported'],
    ['alg none', signJws({ header: { alg: 'none', x5c: chain.x5c }, payload }), 'alg_unsupported'],
    ['signed by another leaf key', signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload, key: makeChain({ root }).leaf.privateKey }), 'signature_invalid'],
    ['tampered payload', replacePart(pki.sign(payload), 1, Buffer.from(JSON.stringify({ ...payload, notificationType: 'REFUND' })).toString('base64url')), 'signature_invalid']
  ]
  for (const [name, jws, reason] of forgeries) {
    const r = await s.post(body(jws))
    t.equal(r.status, 403, `${name}: 403`)
    t.match(r.json.error, reason, `${name}: says ${reason}`)
  }
  const xcode = await s.post(body(signNotification(chain, notificationPayload({ environment: 'Xcode', notificationUUID: randomUUID() }))))
  t.equal(xcode.status, 403, 'Xcode environment: 403')
  t.equal(xcode.json.code, 'ENVIRONMENT_NOT_TRUSTED')
  t.equal(decodePart(pki.sign(), 0).alg, 'ES256')

  // Forwarding needs a stored row: with only the genuine one stored and
  // settled, the target's one request is all it can ever get.
  const rows = (await s.facts.all<{ verification: string }>(sql`SELECT verification FROM notifications`))
  t.same(rows, [{ verification: 'verified' }], 'nothing refused was stored')
  await settled(s)
  t.same(await tally(s, hostOf(target.url)), { deliveries: 1, delivered: 1, dead: 0, pending: 0, attempts: 1, recorded: 1 })
  t.same(target.received.map((r) => r.headers['x-storehook-notification-id']), [good.json.id], 'only the genuine notification was forwarded')
})

t.test('the real Apple notification verifies against the bundled root at its signedDate', async (t) => {
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce' })
  const r = await s.post(REAL)
  t.equal(r.status, 200)
  const row = (await s.facts.get<{ verification: string; bundle_id: string; environment: string; notification_type: string }>(sql`SELECT verification, bundle_id, environment, notification_type FROM notifications`))
  t.same(row, { verification: 'verified', bundle_id: 'com.nineton.taller', environment: 'Production', notification_type: 'TEST' })
})

t.test('under log, a bad signature is accepted, forwarded and marked with its reason; under off, not checked', async (t) => {
  const pki = trustedPki(t)
  const stranger = makeChain()
  const logged = await startApp(t, { VERIFY_SIGNATURES: 'log', APPLE_ROOT_CERTS: pki.rootPath })
  t.equal((await logged.post(body(signNotification(stranger, notificationPayload({ notificationUUID: randomUUID() }))))).status, 200)
  const row = (await logged.facts.get<{ verification: string; verification_error: string }>(sql`SELECT verification, verification_error FROM notifications`))
  t.equal(row!.verification, 'unverified')
  t.match(row!.verification_error, /chain_untrusted/)

  const off = await startApp(t, { VERIFY_SIGNATURES: 'off' })
  t.equal((await off.post(body(signNotification(stranger, notificationPayload({ notificationUUID: randomUUID() }))))).status, 200)
  t.equal((await off.facts.get<{ verification: string }>(sql`SELECT verification FROM notifications`))!.verification, 'unchecked')
})

t.test('APPLE_BUNDLE_IDS refuses other bundles; APPLE_SHARED_SECRET guards V1', async (t) => {
  const pki = trustedPki(t)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: pki.rootPath, APPLE_BUNDLE_IDS: 'com.example,com.other', APPLE_SHARED_SECRET: 'right-secret' })
  const wrongBundle = await s.post(body(pki.sign(notificationPayload({ bundleId: 'com.evil', notificationUUID: randomUUID() }))))
  t.equal(wrongBundle.status, 403)
  t.equal(wrongBundle.json.code, 'BUNDLE_NOT_ALLOWED')
  t.equal((await s.post(body(pki.sign(notificationPayload({ bundleId: 'com.other', notificationUUID: randomUUID() }))))).status, 200)

  const wrongSecret = await s.post(v1Body({ bid: 'com.example', password: 'wrong-secret' }))
  t.equal(wrongSecret.status, 403)
  t.equal(wrongSecret.json.code, 'SHARED_SECRET_MISMATCH')
  t.equal((await s.post(v1Body({ bid: 'com.example', password: 'right-secret' }))).status, 200)
  const rows = (await s.facts.all<{ version: number; verification: string }>(sql`SELECT version, verification FROM notifications ORDER BY id`))
  t.same(rows, [{ version: 2, verification: 'verified' }, { version: 1, verification: 'verified' }])
})

// Finding 1 of the security review: V1 has no signature, so under enforce
// without APPLE_SHARED_SECRET anyone could post a REFUND that was stored and
// forwarded. It must be refused unless the operator opts in.
t.test('under enforce without APPLE_SHARED_SECRET, a V1 is refused: nothing stored, nothing forwarded', async (t) => {
  const pki = trustedPki(t)
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: pki.rootPath, FORWARD_TARGETS: target.url })
  const forged = await s.post('{"notification_type":"REFUND","bid":"com.example.app"}')
  t.equal(forged.status, 403, 'a forged V1 REFUND is refused')
  t.equal(forged.json.code, 'V1_UNAUTHENTICATED')
  t.match(forged.json.error, /APPLE_SHARED_SECRET/, 'says how to fix it: set the shared secret')
  t.match(forged.json.error, /ALLOW_UNAUTHENTICATED_V1=true/, '... or opt in')
  t.equal((await s.post(v1Body({ bid: 'com.example.app' }))).status, 403, 'so is a well-formed one')
  const counts = async (): Promise<unknown> => (await s.facts.get(sql`SELECT (SELECT count(*) FROM notifications) AS notifications, (SELECT count(*) FROM deliveries) AS deliveries`))
  t.same(await counts(), { notifications: 0, deliveries: 0 }, 'nothing was stored, so nothing can be forwarded')

  // A genuine V2 after it is the only thing the target ever receives.
  const genuine = Buffer.from(body(pki.sign()))
  t.equal((await s.post(genuine)).status, 200)
  await target.waitFor(1)
  t.ok(target.received[0]!.body.equals(genuine), 'the target received the genuine V2, not the V1')
  t.same(await counts(), { notifications: 1, deliveries: 1 })
  const readyz = await fetch(`${s.url}/readyz`)
  t.notMatch(await readyz.text(), /ALLOW_UNAUTHENTICATED_V1/, '/readyz carries no opt-in detail')
})

t.test('ALLOW_UNAUTHENTICATED_V1=true accepts V1 unchecked under enforce, and says so in the log, /readyz and the dashboard', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', ALLOW_UNAUTHENTICATED_V1: 'true', FORWARD_TARGETS: target.url, ADMIN_TOKEN })
  const warned = s.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /ALLOW_UNAUTHENTICATED_V1=true/.test(l.msg))
  t.equal(warned.length, 1, 'one warning at start-up')
  t.match(warned[0].msg, /APPLE_SHARED_SECRET/, 'it says how to close the hole')

  const v1 = v1Body({ type: 'REFUND' })
  t.equal((await s.post(v1)).status, 200, 'accepted')
  await target.waitFor(1)
  t.ok(target.received[0]!.body.equals(v1), 'and forwarded byte for byte')
  const row = (await s.facts.get<{ verification: string; verification_error: string }>(sql`SELECT verification, verification_error FROM notifications`))
  t.equal(row!.verification, 'unchecked', 'stored as unchecked')
  t.match(row!.verification_error, /ALLOW_UNAUTHENTICATED_V1=true/, 'with the reason')

  const readyz = await fetch(`${s.url}/readyz`)
  t.equal(readyz.status, 200, '/readyz stays 200')
  const ready = await readyz.json() as { status: string; detail: string }
  t.equal(ready.status, 'ready')
  t.match(ready.detail, /ALLOW_UNAUTHENTICATED_V1=true/, 'with a detail naming the opt-in')

  const { cookie } = await login(s.url)
  for (const path of ['/admin', '/admin/notifications', '/admin/quarantine']) {
    t.match((await get(s.url, path, cookie)).text, /<p class="banner" role="alert">ALLOW_UNAUTHENTICATED_V1=true/, `${path} shows the warning banner`)
  }
  t.notMatch((await get(s.url, '/admin/login')).text, /ALLOW_UNAUTHENTICATED_V1/, 'but not to someone not logged in')
})

t.test('without the opt-in, the dashboard shows no banner; the opt-in has no effect beside APPLE_SHARED_SECRET', async (t) => {
  const plain = await startApp(t, { VERIFY_SIGNATURES: 'enforce', ADMIN_TOKEN })
  t.notMatch((await get(plain.url, '/admin', (await login(plain.url)).cookie)).text, /class="banner" role="alert">ALLOW_UNAUTHENTICATED_V1/)
  t.notOk(plain.logs.some((l) => /ALLOW_UNAUTHENTICATED_V1/.test(l)), 'and the log says nothing of it')

  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', ALLOW_UNAUTHENTICATED_V1: 'true', APPLE_SHARED_SECRET: 'right-secret' })
  t.ok(s.logs.some((l) => /ALLOW_UNAUTHENTICATED_V1=true has no effect: APPLE_SHARED_SECRET is set/.test(l)), 'start-up says the secret wins')
  t.notOk(s.logs.some((l) => /right-secret/.test(l)), 'without the secret itself')
  const wrong = await s.post(v1Body({ password: 'wrong-secret' }))
  t.equal(wrong.status, 403)
  t.equal(wrong.json.code, 'SHARED_SECRET_MISMATCH', 'a wrong password is still refused')
  t.notMatch(await (await fetch(`${s.url}/readyz`)).text(), /ALLOW_UNAUTHENTICATED_V1/)
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!.n, 0, 'nothing stored')
})

t.test('under log, a V1 without APPLE_SHARED_SECRET is accepted and marked unchecked; under off, unchanged', async (t) => {
  for (const mode of ['log', 'off']) {
    const s = await startApp(t, { VERIFY_SIGNATURES: mode })
    t.equal((await s.post(v1Body())).status, 200, `${mode}: accepted`)
    t.equal((await s.facts.get<{ verification: string }>(sql`SELECT verification FROM notifications`))!.verification, 'unchecked', `${mode}: unchecked`)
    t.same(await (await fetch(`${s.url}/readyz`)).json(), { status: 'ready' }, `${mode}: no opt-in detail`)
  }
})

t.test('under enforce without APPLE_BUNDLE_IDS, any app\'s signed notification would be accepted: said at start, in /readyz and on the dashboard', async (t) => {
  const open = await startApp(t, { VERIFY_SIGNATURES: 'enforce', ADMIN_TOKEN })
  const warned = open.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /APPLE_BUNDLE_IDS is not set/.test(l.msg))
  t.equal(warned.length, 1, 'one warning at start-up')
  const readyz = await fetch(`${open.url}/readyz`)
  t.equal(readyz.status, 200, '/readyz stays 200')
  t.match(((await readyz.json()) as { detail: string }).detail, /APPLE_BUNDLE_IDS is not set/, 'with a detail naming the variable')
  t.match((await get(open.url, '/admin', (await login(open.url)).cookie)).text, /<p class="banner" role="alert">APPLE_BUNDLE_IDS is not set/, 'the dashboard shows it')

  const closed = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_BUNDLE_IDS: 'com.example', ADMIN_TOKEN })
  t.notOk(closed.logs.some((l) => /APPLE_BUNDLE_IDS is not set/.test(l)), 'with the bundle IDs set, no warning')
  t.same(await (await fetch(`${closed.url}/readyz`)).json(), { status: 'ready' }, 'and /readyz has no detail')
  t.notMatch((await get(closed.url, '/admin', (await login(closed.url)).cookie)).text, /class="banner"/, 'nor the dashboard a banner')

  const logMode = await startApp(t, { VERIFY_SIGNATURES: 'log' })
  t.notOk(logMode.logs.some((l) => /APPLE_BUNDLE_IDS is not set/.test(l)), 'under log, which accepts anything anyway, no warning of this')
})
