// What a sender puts in a field must not grow what storehook answers, logs or
// stores: a 934 KB POST once came back as a 700 KB 403 and a 700 KB log line,
// and in log mode a 700 KB notificationUUID was stored three times over.
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, tempDir, type TestApp } from '../helpers/app.ts'
import { makeChain, makeRoot, notificationPayload, signJws, signNotification } from '../helpers/apple-chain.ts'
import { startTarget } from '../helpers/target.ts'

const HUGE = 700_000
const body = (signedPayload: string): string => JSON.stringify({ signedPayload })
const longestLogLine = (s: TestApp): number => Math.max(...s.logs.map((l) => l.length))
const count = async (s: TestApp): Promise<number> => (await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!.n

function pki (t: Parameters<typeof tempDir>[0]): { rootPath: string; chain: ReturnType<typeof makeChain> } {
  const root = makeRoot()
  const rootPath = join(tempDir(t), 'root.pem')
  writeFileSync(rootPath, root.pem)
  return { rootPath, chain: makeChain({ root }) }
}

async function post (s: TestApp, text: string): Promise<{ status: number; text: string; json: any }> {
  const res = await fetch(`${s.url}/apple/notifications`, { method: 'POST', body: text, headers: { 'content-type': 'application/json' } })
  const answer = await res.text()
  return { status: res.status, text: answer, json: JSON.parse(answer) }
}

t.test('under enforce, refusals quote at most ~100 characters of what was sent, in the answer and in the log', async (t) => {
  const { rootPath, chain } = pki(t)
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath, APPLE_BUNDLE_IDS: 'com.example', FORWARD_TARGETS: target.url })
  const cases: Array<[string, string, number, string]> = [
    ['a bundle ID of 256 characters, not allowed', body(signNotification(chain, notificationPayload({ bundleId: 'b'.repeat(256) }))), 403, 'BUNDLE_NOT_ALLOWED'],
    ['a 700 KB alg', body(signJws({ header: { alg: 'a'.repeat(HUGE), x5c: chain.x5c }, payload: notificationPayload(), key: chain.leaf.privateKey })), 403, 'SIGNATURE_INVALID'],
    ['a 700 KB alg that is an array', body(signJws({ header: { alg: ['a'.repeat(HUGE)], x5c: chain.x5c }, payload: notificationPayload(), key: chain.leaf.privateKey })), 403, 'SIGNATURE_INVALID'],
    ['a 700 KB bundle ID', body(signNotification(chain, notificationPayload({ bundleId: 'b'.repeat(HUGE) }))), 400, 'PAYLOAD_MALFORMED'],
    ['a 700 KB notificationUUID', body(signNotification(chain, notificationPayload({ notificationUUID: 'u'.repeat(HUGE) }))), 400, 'PAYLOAD_MALFORMED']
  ]
  for (const [name, text, status, code] of cases) {
    const r = await post(s, text)
    t.equal(r.status, status, `${name}: ${status}`)
    t.equal(r.json.code, code, `${name}: ${code}`)
    t.ok(r.text.length < 400, `${name}: a ${r.text.length}-byte answer (${r.json.error})`)
    t.notMatch(r.text, /(a{101}|b{101}|u{101})/, `${name}: quotes at most 100 characters of the value`)
  }
  t.ok(longestLogLine(s) < 2000, `no log line grew with the input (longest ${longestLogLine(s)} characters)`)
  // Refusals are answered before anything is written: the database is exact
  // now, and without a delivery row nothing can reach the target.
  t.equal(await count(s), 0, 'nothing refused was stored')
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM deliveries`))!.n, 0, 'so nothing can be forwarded')
  t.equal(target.received.length, 0, 'and nothing was')
})

t.test('under log, an outer field too long is refused (not stored three times over), a nested one is left unindexed, and stored reasons stay short', async (t) => {
  const { rootPath, chain } = pki(t)
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'log', APPLE_ROOT_CERTS: rootPath, FORWARD_TARGETS: target.url })
  const fields = ['notificationUUID', 'notificationType', 'subtype']
  for (const field of fields) {
    const r = await post(s, body(signNotification(makeChain(), { ...notificationPayload(), [field]: 'u'.repeat(HUGE) })))
    t.equal(r.status, 400, `an unverified payload with a 700 KB ${field}: 400`)
    t.equal(r.json.code, 'PAYLOAD_MALFORMED')
    t.ok(r.text.length < 400, `says so briefly (${r.json.error})`)
  }
  for (const field of ['environment', 'bundleId']) {
    const p = notificationPayload()
    const r = await post(s, body(signNotification(chain, { ...p, data: { ...(p.data as object), [field]: 'd'.repeat(300) } })))
    t.equal(r.status, 400, `a signed payload with a 300-character ${field}: 400`)
  }
  const v1 = await post(s, JSON.stringify({ notification_type: 'DID_RENEW', bid: 'v'.repeat(HUGE) }))
  t.equal(v1.status, 400, 'a V1 with a 700 KB bid: 400')
  t.equal(v1.json.code, 'BODY_NOT_NOTIFICATION')
  t.equal(await count(s), 0, 'none of them stored')

  const tx = signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload: { transactionId: 't'.repeat(500_000), originalTransactionId: '2000000111111111', productId: 'pro.monthly' }, key: chain.leaf.privateKey })
  const p = notificationPayload({ notificationUUID: randomUUID() })
  const withTx = await post(s, body(signNotification(chain, { ...p, data: { ...(p.data as object), signedTransactionInfo: tx } })))
  t.equal(withTx.status, 200, 'a 500 KB nested transactionId (base64 twice: under the 1 MB limit) does not cost the notification')
  const forgedAlg = await post(s, body(signJws({ header: { alg: 'a'.repeat(HUGE), x5c: chain.x5c }, payload: notificationPayload({ notificationUUID: randomUUID() }), key: chain.leaf.privateKey })))
  t.equal(forgedAlg.status, 200, 'under log, a 700 KB alg is accepted as unverified')
  const rows = await s.facts.all<{ transaction_id: string | null; original_transaction_id: string | null; verification_error: string | null; uuid: number; dedupe: number }>(
    sql`SELECT transaction_id, original_transaction_id, verification_error, length(notification_uuid) AS uuid, length(dedupe_key) AS dedupe FROM notifications ORDER BY received_at, id`)
  t.equal(rows.length, 2)
  t.match(rows[0], { transaction_id: null, original_transaction_id: '2000000111111111', uuid: 36, dedupe: 36 }, 'the long nested id is unindexed, the others are')
  t.ok(rows[1]!.verification_error!.length < 300, `the stored reason is short (${rows[1]!.verification_error})`)
  t.ok(longestLogLine(s) < 2000, `no log line grew with the input (longest ${longestLogLine(s)} characters)`)
  await target.waitFor(2)
  t.equal(target.received.length, 2, 'only the two accepted were forwarded')
})
