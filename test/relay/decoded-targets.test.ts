// A target with "payload": "decoded", end to end: real receivers on
// 127.0.0.1 verify every body with the standardwebhooks package and compare
// it with what Apple's own library decodes from the same payload; retries,
// replays, filters and the quarantine treat it like any other target.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import type { DecodedNotification } from '../../src/decoded/types.ts'
import { ADMIN_TOKEN, api, untrustedNotification } from '../helpers/admin.ts'
import { configFile, startApp, tempDir, until } from '../helpers/app.ts'
import { appleDecodes, cases, schemaValidator, TEST_CA, V1_BODY } from '../helpers/decoded.ts'
import { tally } from '../helpers/facts.ts'
import { get, login } from '../helpers/dashboard.ts'
import { v1Body } from '../helpers/notifications.ts'
import { startTarget, type Received } from '../helpers/target.ts'

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const PRODUCTION_SECRET = 'whsec_' + Buffer.from('another secret, of the production backend').toString('base64')
const V1_PASSWORD = (JSON.parse(V1_BODY.toString('utf8')) as { password: string }).password
const validate = schemaValidator()

// What a receiver does: verify storehook's signature, then read the JSON.
function verified (secret: string, r: Received): DecodedNotification {
  const doc = new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as DecodedNotification
  if (!validate(doc)) throw new Error(`schema: ${JSON.stringify(validate.errors)}`)
  return doc
}

t.test('a decoded target gets every shape verified, decoded as Apple\'s library decodes it, and signed; the others get Apple\'s bytes', async (t) => {
  const { chain, all } = cases()
  const dir = tempDir(t)
  const roots = [['chain.pem', chain.root.pem], ['test-ca.der', TEST_CA]] as const
  for (const [name, bytes] of roots) writeFileSync(join(dir, name), bytes)
  const appleRoot = new URL('../fixtures/apple/certs/AppleRootCA-G3.pem', import.meta.url).pathname
  // The first attempt of each notification fails: the retry must carry the same document.
  const backend = await startTarget((r, _n, res) => {
    const seen = backend.received.filter((x) => x.headers['webhook-id'] === r.headers['webhook-id']).length
    res.writeHead(seen === 1 ? 503 : 200).end()
  })
  const production = await startTarget()
  const revenuecat = await startTarget()
  for (const x of [backend, production, revenuecat]) t.teardown(x.close)
  const config = configFile(t, {
    targets: [
      { name: 'backend', url: backend.url, payload: 'decoded', signingSecret: SECRET },
      { name: 'production', url: production.url, payload: 'decoded', signingSecret: PRODUCTION_SECRET, filters: { environments: ['Production'] } },
      { name: 'revenuecat', url: revenuecat.url }
    ]
  })
  const s = await startApp(t, {
    STOREHOOK_CONFIG: config,
    VERIFY_SIGNATURES: 'enforce',
    APPLE_ROOT_CERTS: [...roots.map(([name]) => join(dir, name)), appleRoot].join(','),
    APPLE_SHARED_SECRET: V1_PASSWORD,
    ADMIN_TOKEN
  })
  const ids = new Map<string, string>()
  for (const c of all) {
    const answer = await s.post(c.body)
    t.equal(answer.status, 200, `${c.name}: accepted`)
    ids.set(answer.json.id as string, c.name)
  }
  const v1 = await s.post(V1_BODY)
  t.equal(v1.status, 200, 'the V1 notification is accepted (its shared secret checks)')
  ids.set(v1.json.id as string, 'V1')

  const notifications = all.length + 1
  await backend.waitFor(notifications * 2, 20_000)
  const first = new Map<string, Received>()
  for (const r of backend.received) {
    const id = r.headers['webhook-id'] as string
    const doc = verified(SECRET, r)
    t.equal(doc.id, id, 'the document\'s id is the webhook-id')
    t.equal(r.headers['x-storehook-notification-id'], id)
    const before = first.get(id)
    if (before === undefined) first.set(id, r)
    else t.ok(r.body.equals(before.body), `${ids.get(id) ?? 'V1'}: the retry sends the same document, byte for byte`)
  }
  t.equal(first.size, notifications, 'every notification reached the decoded target')
  for (const [id, r] of first) {
    const doc = verified(SECRET, r)
    t.match(doc, { schemaVersion: 1, source: 'webhook', verification: { status: 'verified', reason: null } }, 'envelope')
    t.equal(r.headers['content-type'], 'application/json')
    const c = all.find((x) => x.name === ids.get(id))
    if (ids.get(id) === 'V1') {
      const { password, ...expected } = JSON.parse(V1_BODY.toString('utf8')) as Record<string, unknown>
      t.same(doc.notification, expected, 'V1: its object, without the password')
      t.notOk(r.body.includes(Buffer.from(String(password))), 'V1: the shared secret is not in the body')
      continue
    }
    t.same(doc.notification, await appleDecodes(c!), `${c!.name}: equals what Apple's library decodes`)
    t.equal(doc.signedPayload, (JSON.parse(c!.body.toString('utf8')) as { signedPayload: string }).signedPayload, `${c!.name}: Apple's JWS is in the document`)
  }

  // Filters hold: only the Production notifications reach the production target.
  const productionNames = [...all.filter((c) => c.app.environment === 'Production').map((c) => c.name), 'V1']
  await production.waitFor(productionNames.length)
  t.same(production.received.map((r) => ids.get(verified(PRODUCTION_SECRET, r).id)).sort(), productionNames.sort(), 'the environment filter routes a decoded target too')
  t.throws(() => new Webhook(SECRET).verify(production.received[0]!.body, production.received[0]!.headers as Record<string, string>), 'each target\'s own secret')

  // The Apple target is unchanged: Apple's exact bytes.
  await revenuecat.waitFor(notifications)
  t.same(revenuecat.received.map((r) => r.body.toString('utf8')).sort(), [...all.map((c) => c.body.toString('utf8')), V1_BODY.toString('utf8')].sort(), 'Apple\'s bytes to the Apple target')

  // A replay sends the same document again (only the signature's timestamp is new).
  const [someId, someFirst] = [...first][0]!
  const replay = await api(s.url, `/notifications/${someId}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ targets: ['backend'] }) })
  t.same(replay.json.replayed, ['backend'])
  const replayed = (await backend.waitFor(notifications * 2 + 1)).at(-1)!
  t.ok(replayed.body.equals(someFirst.body), 'the replayed document is the one first sent')
  await until(async () => (await tally(s, 'backend')).delivered === notifications, 10_000, 'the replay recorded')
  t.match(await tally(s, 'backend'), { deliveries: notifications, delivered: notifications, dead: 0, pending: 0 })
})

t.test('a notification released from the quarantine says so, and what its verification was', async (t) => {
  const backend = await startTarget()
  t.teardown(backend.close)
  const config = configFile(t, { targets: [{ name: 'backend', url: backend.url, payload: 'decoded', signingSecret: SECRET }] })
  const dir = tempDir(t)
  writeFileSync(join(dir, 'root.pem'), cases().chain.root.pem)
  const s = await startApp(t, { STOREHOOK_CONFIG: config, VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: join(dir, 'root.pem'), ADMIN_TOKEN })
  t.equal((await s.post(untrustedNotification())).status, 403, 'an unknown chain is refused and quarantined')
  const released = await api(s.url, '/quarantine/1/release', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ force: true }) })
  t.equal(released.status, 200, JSON.stringify(released.json))
  const [got] = await backend.waitFor(1)
  const doc = verified(SECRET, got!)
  t.match(doc, { source: 'quarantine', verification: { status: 'unverified', reason: /chain_untrusted/ }, notificationVersion: 2 })
})

t.test('a stored body the decoder cannot read is dead at once for a decoded target, with the reason, and nothing is sent', async (t) => {
  const backend = await startTarget()
  const apple = await startTarget()
  for (const x of [backend, apple]) t.teardown(x.close)
  const config = configFile(t, { targets: [{ name: 'backend', url: backend.url, payload: 'decoded', signingSecret: SECRET }, { name: 'apple', url: apple.url }] })
  const s = await startApp(t, { STOREHOOK_CONFIG: config })
  // Stored by the CLI's ingest of an older storehook, say: the row is written
  // directly, the way a body the ingest would refuse today could be there.
  const { id } = await s.app.outbox.enqueue({
    id: '0193b3c4-0000-7000-8000-0000000000aa', dedupeKey: 'old-1', receivedAt: Date.now(), source: 'webhook', version: 2,
    notificationType: 'DID_RENEW', verification: 'unchecked', body: Buffer.from('{"neither": "V1 nor V2"}')
  }, ['backend', 'apple'], [])
  await until(async () => (await tally(s, 'backend')).dead === 1, 10_000, 'the decoded delivery is dead')
  const found = await s.app.outbox.getNotification(id)
  const d = found!.deliveries.find((x) => x.target === 'backend')!
  t.match(d.lastError, /^the decoded document cannot be built: Body is not an App Store notification/)
  t.equal(d.history.length, 1, 'one attempt recorded, with the reason')
  t.equal(backend.received.length, 0, 'nothing was sent to the decoded target')
  await apple.waitFor(1)
  t.equal(apple.received[0]!.body.toString(), '{"neither": "V1 nor V2"}', 'the Apple target still gets the stored bytes')
})

const unescapeHtml = (text: string): string => text.replace(/&(amp|lt|gt|quot|#39|#96);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`' })[e]!)

t.test('the dashboard shows, on the decoded target\'s delivery, the exact document it was sent', async (t) => {
  const backend = await startTarget()
  const apple = await startTarget()
  for (const x of [backend, apple]) t.teardown(x.close)
  const config = configFile(t, { targets: [{ name: 'backend', url: backend.url, payload: 'decoded', signingSecret: SECRET }, { name: 'apple', url: apple.url }] })
  const s = await startApp(t, { STOREHOOK_CONFIG: config, ADMIN_TOKEN })
  // A number past 2^53 and markup in a field: shown as sent, escaped.
  const body = Buffer.from(JSON.stringify(JSON.parse(v1Body().toString('utf8'))).replace('"bvrs":"42"', '"bvrs":"<b>42</b>","counter":90071992547409931'))
  const { json } = await s.post(body)
  const [sent] = await backend.waitFor(1)
  await apple.waitFor(1)
  const { cookie } = await login(s.url)
  const page = (await get(s.url, `/admin/notifications/${json.id as string}`, cookie)).text
  const shown = [...page.matchAll(/<details class="decoded">.*?<pre class="wrap">([^<]*)<\/pre><\/details>/gs)].map((m) => unescapeHtml(m[1]!))
  t.equal(shown.length, 1, 'one document: on the decoded target\'s card only')
  t.equal(shown[0], sent!.body.toString('utf8'), 'the exact bytes the target received')
  t.match(shown[0], '"counter":90071992547409931', 'the number\'s digits as sent')
  t.notMatch(page, '<b>42</b>', 'markup in a field is escaped')
  t.match(page.slice(page.indexOf('data-target="backend"')), /Body sent on every attempt/)
  t.notMatch(page, 'shared-secret-value', 'the V1 password is shown nowhere')
})
