// Every view of a stored body (the admin API's detail, the dashboard's page)
// must answer 200 whatever the row holds, and must never show a V1 body's
// `password`: it is Apple's shared secret. Security review, findings 4 and 8.
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { startApp, type TestApp } from '../helpers/app.ts'
import { get, login } from '../helpers/dashboard.ts'
import { startTarget } from '../helpers/target.ts'

// What an older storehook (or anyone with the database file) left behind:
// a row written straight into the real database, past every check of ingest.
async function insertStored (s: TestApp, body: Buffer): Promise<string> {
  const id = randomUUID()
  await s.facts.run(sql`INSERT INTO notifications (id, dedupe_key, received_at, source, version, notification_type, verification, body)
    VALUES (${id}, ${`v1:${id}`}, ${Date.now()}, 'webhook', 1, 'DID_RENEW', 'unchecked', ${body})`)
  return id
}

t.test('a stored body nested 100,000 levels deep still renders: 200, the raw text escaped, and a note', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const levels = 100_000
  const deep = Buffer.from(`{"notification_type":"DID_RENEW","bid":"<b>com.example</b>","password":"deep-row-secret","x":${'['.repeat(levels)}${']'.repeat(levels)}}`)
  const id = await insertStored(s, deep)
  // And rows that are not JSON at all, nor UTF-8.
  const garbage = await insertStored(s, Buffer.concat([Buffer.from('<script>alert(1)</script> {"password":"x'), Buffer.from([0xff, 0xfe, 0x00])]))
  const unterminated = await insertStored(s, Buffer.from(`{"notification_type":"X","password":"cut-secret${'['.repeat(levels)}`))

  const one = await api(s.url, `/notifications/${id}`)
  t.equal(one.status, 200, 'the admin API answers 200')
  t.equal(one.json.payload, null, 'no decoded payload')
  t.match(one.json.payloadError, /nested deeper than 64 levels/, 'and why not')
  t.ok(one.json.body === deep.toString('utf8').replace('deep-row-secret', '********'), 'the raw text as stored, whole, the secret masked')
  t.notMatch(JSON.stringify(one.json), /deep-row-secret/, 'the secret of an undecodable row is masked too')
  t.equal((await api(s.url, '/notifications')).status, 200, 'the list too')

  const { cookie } = await login(s.url)
  const page = await get(s.url, `/admin/notifications/${id}`, cookie)
  t.equal(page.status, 200, 'the dashboard page answers 200')
  t.match(page.text, /cannot be shown decoded/, 'with a note that it cannot be shown decoded')
  t.match(page.text, /nested deeper than 64 levels/, 'and why')
  t.match(page.text, '{&quot;notification_type&quot;:&quot;DID_RENEW&quot;,&quot;bid&quot;:&quot;&lt;b&gt;com.example&lt;/b&gt;&quot;', 'the raw text, escaped')
  t.match(page.text, '[[[[[[[[', 'all of it')
  t.notMatch(page.text, /deep-row-secret|<b>com\.example/, 'no secret, no markup')
  t.equal((await get(s.url, '/admin/notifications', cookie)).status, 200, 'the list page too')
  t.equal((await get(s.url, '/admin', cookie)).status, 200, 'and the overview')

  for (const other of [garbage, unterminated]) {
    const r = await api(s.url, `/notifications/${other}`)
    t.equal(r.status, 200, 'a row that is not JSON: 200')
    t.equal(r.json.payload, null)
    t.type(r.json.payloadError, 'string')
    const p = await get(s.url, `/admin/notifications/${other}`, cookie)
    t.equal(p.status, 200, 'its page: 200')
    t.notMatch(p.text, /<script>alert|cut-secret/, 'escaped, and a password is masked even in a broken body')
    t.match(p.text, /cannot be shown decoded/)
  }
})

t.test('a V1 password (Apple\'s shared secret) reaches the targets exactly, and no view shows it', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  // The password's key is spelled with an escape and its value has escapes.
  const secret = 's3cr"et\\A'
  const raw = '{"notification_type":"DID_RENEW",\n' +
    ' "bid":"com.example.app","environment":"PROD",' +
    '"unified_receipt":{"status":0,"password":"nested-is-not-the-secret","latest_receipt_info":[{"original_transaction_id":"1000000111111111","transaction_id":"2"}]},' +
    '  "pass\\u0077ord" :\t"s3cr\\"et\\\\\\u0041"}'
  t.equal(JSON.parse(raw).password, secret, 'the test body means what it says')
  // JSON.parse keeps the last of duplicate keys: a body with two passwords is
  // refused today (one body, one reading), but an older version stored such
  // bodies, and every view must mask both.
  const twice = raw.replace('"notification_type":"DID_RENEW",', '"notification_type":"DID_RENEW", "password":"first-copy-of-it",')
  const s = await startApp(t, { ADMIN_TOKEN, FORWARD_TARGETS: target.url, APPLE_SHARED_SECRET: secret, VERIFY_SIGNATURES: 'enforce' })
  const posted = await s.post(raw)
  t.equal(posted.status, 200, 'accepted: the shared secret matched')
  const [got] = await target.waitFor(1)
  t.equal(got!.body.toString('utf8'), raw, 'the target got the exact bytes, secret included')
  const refused = await s.post(twice)
  t.equal(refused.status, 400, 'two passwords in one body are refused')
  t.equal(refused.json.code, 'BODY_DUPLICATE_KEY')
  const leaks = /first-copy-of-it|s3cr/
  const decoded = await api(s.url, `/notifications/${posted.json.id}`)
  t.equal(decoded.status, 200)
  t.equal(decoded.json.body, raw.replace('"s3cr\\"et\\\\\\u0041"', '"********"'), 'the raw body: the password value masked, every other byte kept')
  t.equal(decoded.json.payload.password, '********', 'the decoded payload: masked')
  t.equal(decoded.json.payload.unified_receipt.password, 'nested-is-not-the-secret', 'only the top-level key is the shared secret')
  t.equal(decoded.json.payload.bid, 'com.example.app')
  t.notMatch(JSON.stringify(decoded.json), leaks, 'nowhere in the detail')

  // As an older version would have stored it; what is delivered is the row's body.
  // It no longer decodes (two readings), so the views show its text, masked.
  await s.facts.run(sql`UPDATE notifications SET body = ${Buffer.from(twice)}, body_encoding = 'raw', body_chain_id = NULL WHERE id = ${posted.json.id as string}`)
  const masked = twice.replace('"first-copy-of-it"', '"********"').replace('"s3cr\\"et\\\\\\u0041"', '"********"')
  const one = await api(s.url, `/notifications/${posted.json.id}`)
  t.equal(one.status, 200)
  t.equal(one.json.body, masked, 'the raw body: every top-level password value masked, every other byte kept')
  t.equal(one.json.payload, null, 'it does not decode today')
  t.notMatch(JSON.stringify(one.json), leaks, 'nowhere in the detail')
  const list = await api(s.url, '/notifications')
  t.notMatch(JSON.stringify(list.json), leaks, 'nor in the list')

  const { cookie } = await login(s.url)
  for (const path of [`/admin/notifications/${posted.json.id}`, '/admin/notifications', '/admin']) {
    const page = await get(s.url, path, cookie)
    t.equal(page.status, 200, path)
    t.notMatch(page.text, leaks, `${path}: no secret`)
  }
  t.match((await get(s.url, `/admin/notifications/${posted.json.id}`, cookie)).text, '&quot;password&quot;:&quot;********&quot;', 'the page shows the key, masked')

  // A replay still sends the exact bytes.
  const replay = await api(s.url, `/notifications/${posted.json.id}/replay`, { method: 'POST' })
  t.equal(replay.status, 200)
  const [, again] = await target.waitFor(2)
  t.equal(again!.body.toString('utf8'), twice, 'a replay sends the exact bytes stored, secrets included')
  t.notMatch(s.logs.join(''), leaks, 'and the logs never had it')
})
