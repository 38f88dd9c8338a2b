import { readFileSync, writeFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import t from 'tap'
import { AppleApiError, AppStoreClient } from '../../src/appstore/client.ts'
import { loadConfig } from '../../src/config.ts'
import { tempDir } from '../helpers/app.ts'
import { ISSUER_ID, KEY_ID, KEY_PATH, startAppleApi } from '../helpers/apple-api.ts'

const app = { bundleId: 'com.example', issuerId: ISSUER_ID, keyId: KEY_ID, privateKeyPem: readFileSync(KEY_PATH, 'utf8') }
const window = { startDate: Date.now() - 3_600_000, endDate: Date.now() }

t.test('429 is retried after Retry-After, 5xx after a backoff, both bounded', async (t) => {
  const api = await startAppleApi()
  t.teardown(api.close)
  const client = new AppStoreClient({ app, environment: 'Sandbox', baseUrl: api.url, minRetryDelayMs: 10 })
  api.failNext(429, 2, 1)
  api.failNext(500, 1)
  const started = Date.now()
  const page = await client.notificationHistory(window, null)
  t.same(page, { notificationHistory: [], hasMore: false })
  t.same(api.requests.map((r) => r.status), [429, 429, 500, 200], 'three failures, then the answer')
  t.ok(Date.now() - started >= 1900, 'Retry-After: 1 was honoured twice')

  api.failNext(429, 10, 0)
  const limited = await client.notificationHistory(window, null).catch((e: unknown) => e) as AppleApiError
  t.type(limited, AppleApiError)
  t.equal(limited.status, 429)
  t.match(limited.message, /429 Too Many Requests.*Rate limit exceeded\. \(4290000\)/)
  t.equal(api.requests.filter((r) => r.status === 429).length, 2 + 5, 'bounded: four retries, then the error')
})

t.test('401 is not retried and explains the Production approval; a dead host is named', async (t) => {
  const api = await startAppleApi({ bundleIds: ['com.other'] })
  t.teardown(api.close)
  const prod = new AppStoreClient({ app, environment: 'Production', baseUrl: api.url, minRetryDelayMs: 10 })
  const err = await prod.requestTestNotification().catch((e: unknown) => e) as AppleApiError
  t.equal(err.status, 401)
  t.match(err.message, /wrong.*Apple also answers 401 in Production until the app has been approved/)
  t.equal(api.requests.length, 1, 'not retried')
  const sandbox = new AppStoreClient({ app, environment: 'Sandbox', baseUrl: api.url, minRetryDelayMs: 10 })
  t.notMatch((await sandbox.requestTestNotification().catch((e: unknown) => e) as Error).message, /approved/)
  const status = await sandbox.testNotificationStatus('nope').catch((e: unknown) => e) as AppleApiError
  t.equal(status.status, 401)

  await api.close()
  const dead = new AppStoreClient({ app, environment: 'Sandbox', baseUrl: api.url, retries: 1, minRetryDelayMs: 10 })
  const down = await dead.notificationHistory(window, null).catch((e: unknown) => e) as AppleApiError
  t.equal(down.status, 0)
  t.match(down.message, /could not be reached \(127\.0\.0\.1:\d+\): ECONNREFUSED/)
})

t.test('the token: ES256, kid, typ, iss, aud, bid, a five-minute life', async (t) => {
  const api = await startAppleApi()
  t.teardown(api.close)
  let seen = ''
  const { createServer } = await import('node:http')
  const spy = createServer((req, res) => { seen = req.headers.authorization ?? ''; res.writeHead(404).end() })
  await new Promise<void>((resolve) => spy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { spy.close() })
  const client = new AppStoreClient({ app, environment: 'Sandbox', baseUrl: `http://127.0.0.1:${(spy.address() as { port: number }).port}` })
  const nf = await client.testNotificationStatus('x').catch((e: unknown) => e) as AppleApiError
  t.match(nf.message, /404 Not Found/)
  const jwt = seen.slice(7)
  t.same(decodeProtectedHeader(jwt), { alg: 'ES256', kid: KEY_ID, typ: 'JWT' })
  const claims = decodeJwt(jwt)
  t.match(claims, { iss: ISSUER_ID, aud: 'appstoreconnect-v1', bid: 'com.example' })
  t.equal(claims.exp! - claims.iat!, 300)
})

t.test('configuration: all keys or none; the key is checked at start', async (t) => {
  const dir = tempDir(t)
  const keys = { APPLE_ISSUER_ID: ISSUER_ID, APPLE_KEY_ID: KEY_ID, APPLE_PRIVATE_KEY_PATH: KEY_PATH, APPLE_BUNDLE_ID: 'com.example' }
  t.equal(loadConfig({}).appleApi, null, 'none set: off')
  const on = loadConfig(keys).appleApi!
  t.match(on, { apps: [{ bundleId: 'com.example', issuerId: ISSUER_ID, keyId: KEY_ID }], baseUrls: { Production: 'https://api.storekit.itunes.apple.com', Sandbox: 'https://api.storekit-sandbox.itunes.apple.com' }, catchUpIntervalMs: 3_600_000, catchUpMarginMs: 600_000 })
  t.same(loadConfig({ ...keys, APPLE_API_BASE_URL: 'http://127.0.0.1:9/', CATCH_UP_INTERVAL_MS: '0' }).appleApi!.baseUrls, { Production: 'http://127.0.0.1:9', Sandbox: 'http://127.0.0.1:9' })
  t.throws(() => loadConfig({ APPLE_KEY_ID: KEY_ID }), /^APPLE_BUNDLE_ID: App Store Server API keys are partly set: also set APPLE_ISSUER_ID, APPLE_PRIVATE_KEY_PATH, APPLE_BUNDLE_ID/)
  t.throws(() => loadConfig({ ...keys, APPLE_PRIVATE_KEY_PATH: join(dir, 'missing.p8') }), /^APPLE_PRIVATE_KEY_PATH: cannot read the App Store Connect key .*ENOENT/)
  const notKey = join(dir, 'not.p8')
  writeFileSync(notKey, 'hello')
  t.throws(() => loadConfig({ ...keys, APPLE_PRIVATE_KEY_PATH: notKey }), /^APPLE_PRIVATE_KEY_PATH: .* is not a PEM private key/)
  const rsa = join(dir, 'rsa.p8')
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  t.throws(() => loadConfig({ ...keys, APPLE_PRIVATE_KEY_PATH: rsa }), /is not an EC P-256 key/)
  t.throws(() => loadConfig({ ...keys, APPLE_API_BASE_URL: 'ftp://x' }), /^APPLE_API_BASE_URL: must be http or https/)
  t.throws(() => loadConfig({ ...keys, APPLE_API_BASE_URL: 'nope' }), /^APPLE_API_BASE_URL: is not a valid absolute URL/)

  const file = (apple: unknown): string => {
    const p = join(dir, `c${Math.random()}.json`)
    writeFileSync(p, JSON.stringify({ apple }))
    return p
  }
  const { APPLE_BUNDLE_ID: _, ...shared } = keys
  const several = loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a.one' }, { bundleId: 'a.two', keyId: 'OTHERKEY01', issuerId: 'other-issuer', privateKeyPath: KEY_PATH }] }) }).appleApi!
  t.match(several.apps, [{ bundleId: 'a.one', keyId: KEY_ID, issuerId: ISSUER_ID }, { bundleId: 'a.two', keyId: 'OTHERKEY01', issuerId: 'other-issuer' }])
  t.ok(loadConfig({ STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a.one', keyId: 'K', issuerId: 'I', privateKeyPath: KEY_PATH }] }) }).appleApi, 'each app may carry its own keys')
  t.throws(() => loadConfig({ ...keys, STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a.one' }] }) }), /^APPLE_BUNDLE_ID: set either APPLE_BUNDLE_ID or "apple.apps"/)
  t.throws(() => loadConfig({ STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a.one' }] }) }), /^APPLE_PRIVATE_KEY_PATH: App Store Server API keys are partly set \(STOREHOOK_CONFIG apple.apps\[0\] has no "privateKeyPath"\)/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a' }, { bundleId: 'a' }] }) }), /listed twice/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [{ keyId: 'x' }] }) }), /needs a "bundleId"/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [{ bundleId: 'a', extra: 'x' }] }) }), /unknown field "extra"/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [{ bundleId: 7 }] }) }), /"bundleId" must be a non-empty string/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: [] }) }), /"apple.apps" must be a non-empty array/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ apps: ['x'] }) }), /apps\[0\]: must be an object/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file({ other: 1 }) }), /unknown field "apple.other"/)
  t.throws(() => loadConfig({ ...shared, STOREHOOK_CONFIG: file([]) }), /"apple" must be an object/)
})
