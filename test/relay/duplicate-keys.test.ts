// A body that two JSON parsers read differently must never be accepted:
// JSON.parse keeps the last of a repeated key, Go's gjson and some streaming
// parsers the first, and Go's encoding/json also matches keys case-insensitively
// (the last match wins). storehook verifies one reading and forwards the bytes,
// so a target reading the other would act on something nobody verified.
import { randomUUID, sign } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, tempDir } from '../helpers/app.ts'
import { makeChain, makeRoot, notificationPayload, signNotification, type Chain } from '../helpers/apple-chain.ts'
import { startTarget } from '../helpers/target.ts'

const SECRET = 'the-shared-secret-of-this-test'
const q = JSON.stringify
const b64 = (s: string): string => Buffer.from(s).toString('base64url')

// Signs header and payload given as raw JSON text, so that they may repeat keys.
function signRaw (chain: Chain, header: string, payload: string): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${sign('sha256', Buffer.from(input), { key: chain.leaf.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

t.test('under enforce, a body with a repeated top-level key or both V1 and V2 fields is refused, stored nowhere, forwarded nowhere', async (t) => {
  const root = makeRoot()
  const rootPath = join(tempDir(t), 'root.pem')
  writeFileSync(rootPath, root.pem)
  const chain = makeChain({ root })
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath, APPLE_SHARED_SECRET: SECRET, FORWARD_TARGETS: target.url })

  const genuine = (): string => signNotification(chain, notificationPayload({ notificationUUID: randomUUID() }))
  const forged = (): string => signNotification(makeChain(), { ...notificationPayload({ notificationUUID: randomUUID() }), notificationType: 'REFUND' })
  const header = (extra: string): string => `{"alg":"ES256","x5c":${q(chain.x5c)}${extra}}`
  const payload = (extra: string): string => `{"notificationType":"TEST","notificationUUID":${q(randomUUID())},"data":{"bundleId":"com.example","environment":"Sandbox"},"signedDate":${Date.now()}${extra}}`

  const cases: Array<[string, string, string]> = [
    ['forged signedPayload first, genuine last', `{"signedPayload":${q(forged())},"signedPayload":${q(genuine())}}`, 'BODY_DUPLICATE_KEY'],
    ['genuine first, forged last', `{"signedPayload":${q(genuine())},"signedPayload":${q(forged())}}`, 'BODY_DUPLICATE_KEY'],
    ['the forged key spelled with an escape', `{"signed\\u0050ayload":${q(forged())},"signedPayload":${q(genuine())}}`, 'BODY_DUPLICATE_KEY'],
    ['not a string first, genuine last', `{"signedPayload":{"a":1},"signedPayload":${q(genuine())}}`, 'BODY_DUPLICATE_KEY'],
    ['the same key in another case (Go encoding/json matches it)', `{"signedPayload":${q(genuine())},"SignedPayload":${q(forged())}}`, 'BODY_DUPLICATE_KEY'],
    ['the same key with a long s (Unicode simple case folding, as Go does)', `{"signedPayload":${q(genuine())},"\\u017fignedPayload":${q(forged())}}`, 'BODY_DUPLICATE_KEY'],
    ['two genuine signedPayloads', `{"signedPayload":${q(genuine())},"signedPayload":${q(genuine())}}`, 'BODY_DUPLICATE_KEY'],
    ['V1 with a wrong password first and the secret last', `{"notification_type":"REFUND","password":"wrong","password":${q(SECRET)}}`, 'BODY_DUPLICATE_KEY'],
    ['V1 with notification_type twice', `{"notification_type":"REFUND","password":${q(SECRET)},"notification_type":"DID_RENEW"}`, 'BODY_DUPLICATE_KEY'],
    ['a genuine signedPayload beside V1 notification_type and password', `{"notification_type":"REFUND","password":"wrong","signedPayload":${q(genuine())}}`, 'BODY_AMBIGUOUS_VERSION'],
    ['a genuine signedPayload beside notification_type alone', `{"signedPayload":${q(genuine())},"notification_type":"REFUND"}`, 'BODY_AMBIGUOUS_VERSION'],
    ['a genuine signedPayload beside NOTIFICATION_TYPE', `{"signedPayload":${q(genuine())},"NOTIFICATION_TYPE":"REFUND"}`, 'BODY_AMBIGUOUS_VERSION'],
    ['a V1 with the secret beside a signedPayload', `{"notification_type":"DID_RENEW","password":${q(SECRET)},"signedPayload":${q(forged())}}`, 'BODY_AMBIGUOUS_VERSION'],
    ['alg twice in a header signed by the trusted chain', `{"signedPayload":${q(signRaw(chain, header(',"alg":"none"'), payload('')))}}`, 'BODY_DUPLICATE_KEY'],
    ['x5c twice in a header signed by the trusted chain', `{"signedPayload":${q(signRaw(chain, header(`,"x5c":${q(makeChain().x5c)}`), payload('')))}}`, 'BODY_DUPLICATE_KEY'],
    ['notificationType twice in a payload signed by the trusted chain', `{"signedPayload":${q(signRaw(chain, header(''), payload(',"notificationType":"REFUND"')))}}`, 'BODY_DUPLICATE_KEY']
  ]
  for (const [name, body, code] of cases) {
    const r = await s.post(body)
    t.equal(r.status, 400, `${name}: 400`)
    t.equal(r.json?.code, code, `${name}: ${code}`)
    t.ok(typeof r.json?.error === 'string' && r.json.error.length < 400, `${name}: says why, briefly ("${r.json?.error}")`)
  }

  // Refusals are answered before anything is written, so the database is
  // exact at once; and only a delivery row can make the target receive
  // anything, so two rows, then two requests, mean nothing else went out.
  const plain = `{"signedPayload":${q(genuine())}}`
  const duplicatesNested = `{"signedPayload":${q(signRaw(chain, header(''), payload(',"data2":{"a":1,"a":2}')))},"futureAppleField":{"x":1,"x":2}}`
  t.equal((await s.post(plain)).status, 200, 'a genuine body is accepted')
  t.equal((await s.post(duplicatesNested)).status, 200, 'a genuine body with an unknown extra key, and repeated keys below the top level, is accepted')
  // Read back through the storage: bodies are stored compressed.
  const ids = (await s.facts.all<{ id: string }>(sql`SELECT id FROM notifications`))
  const rows = await Promise.all(ids.map(async ({ id }) => (await s.app.outbox.getNotification(id))!.notification))
  t.same(rows.map((r) => String(r.body)).sort(), [plain, duplicatesNested].sort(), 'only the two accepted bodies are stored')
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM deliveries`))!.n, 2, 'with one delivery each')
  await target.waitFor(2)
  t.same(target.received.map((r) => r.body.toString()).sort(), [plain, duplicatesNested].sort(), 'only they reached the target')
})
