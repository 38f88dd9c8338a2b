import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { tempDir } from '../helpers/app.ts'
import { runCli } from '../helpers/process.ts'

t.test('defaults match SPEC.md', async (t) => {
  const c = loadConfig({})
  t.equal(c.port, 8080)
  t.equal(c.host, '0.0.0.0')
  t.equal(c.databasePath, './data/storehook.db')
  t.equal(c.verify, 'enforce')
  t.same(c.retry, { minDelayMs: 1000, maxDelayMs: 3_600_000, giveUpAfterMs: 691_200_000 })
  t.equal(c.deliveryTimeoutMs, 10_000)
  t.equal(c.logLevel, 'info')
  t.same(c.targets, [])
  t.equal(c.adminToken, null)
  t.equal(c.metricsToken, null, '/metrics public by default')
  t.equal(c.metricsPort, null, '/metrics on the main listener by default')
  t.same(c.connections, { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 95_000, maxConnections: 2048 })
  t.equal(c.allowUnauthenticatedV1, false, 'V1 without a shared secret is refused under enforce unless opted in')
  t.ok(Object.isFrozen(c))
})

t.test('connection limits: the headers window follows a shorter request timeout', async (t) => {
  t.same(loadConfig({ REQUEST_TIMEOUT_MS: '5000' }).connections, { requestTimeoutMs: 5000, headersTimeoutMs: 5000, keepAliveTimeoutMs: 95_000, maxConnections: 2048 })
  t.same(loadConfig({ REQUEST_TIMEOUT_MS: '20000', HEADERS_TIMEOUT_MS: '2000', KEEP_ALIVE_TIMEOUT_MS: '1000', MAX_CONNECTIONS: '10' }).connections,
    { requestTimeoutMs: 20_000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 1000, maxConnections: 10 })
})

t.test('METRICS_TOKEN and METRICS_PORT are read', async (t) => {
  const c = loadConfig({ METRICS_TOKEN: ' metrics-token-0123456789 ', METRICS_PORT: '9091' })
  t.equal(c.metricsToken, 'metrics-token-0123456789')
  t.equal(c.metricsPort, 9091)
  t.equal(loadConfig({ METRICS_PORT: '' }).metricsPort, null, 'empty is unset')
})

t.test('ALLOW_UNAUTHENTICATED_V1 is true or false', async (t) => {
  t.equal(loadConfig({ ALLOW_UNAUTHENTICATED_V1: 'true' }).allowUnauthenticatedV1, true)
  t.equal(loadConfig({ ALLOW_UNAUTHENTICATED_V1: ' false ' }).allowUnauthenticatedV1, false)
  t.equal(loadConfig({ ALLOW_UNAUTHENTICATED_V1: '' }).allowUnauthenticatedV1, false, 'empty is unset')
})

t.test('FORWARD_TARGETS become targets named by host', async (t) => {
  const c = loadConfig({ FORWARD_TARGETS: 'https://api.revenuecat.com/v1/incoming?token=abc, https://backend.example.com/apple,https://backend.example.com/other' })
  t.same(c.targets.map((x) => x.name), ['api.revenuecat.com', 'backend.example.com', 'backend.example.com-2'])
  t.equal(c.targets[0]!.url, 'https://api.revenuecat.com/v1/incoming?token=abc')
  t.equal(c.targets[0]!.concurrency, 4)
})

t.test('the config file adds targets with their options', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'storehook.json')
  writeFileSync(path, JSON.stringify({
    targets: [{
      name: 'staging',
      url: 'https://staging.example.com/hook',
      headers: { Authorization: 'Bearer x' },
      timeoutMs: 3000,
      concurrency: 2,
      filters: { environments: ['Sandbox'], notificationTypes: ['REFUND'], bundleIds: ['com.a'] },
      signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
    }]
  }))
  const c = loadConfig({ STOREHOOK_CONFIG: path, FORWARD_TARGETS: 'https://rc.example.com/x' })
  t.equal(c.targets.length, 2)
  const s = c.targets[1]!
  t.same([s.name, s.timeoutMs, s.concurrency, s.signingSecret], ['staging', 3000, 2, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'])
  t.same(s.filters, { environments: ['Sandbox'], notificationTypes: ['REFUND'], bundleIds: ['com.a'] })
  t.same(s.headers, { Authorization: 'Bearer x' })
  t.equal(s.payload, 'apple', 'Apple\'s exact bytes unless the target asks for the decoded document')
  t.equal(c.targets[0]!.payload, 'apple', 'FORWARD_TARGETS forward Apple\'s bytes')
})

t.test('a target may ask for the decoded document, with a signing secret', async (t) => {
  const path = join(tempDir(t), 'storehook.json')
  writeFileSync(path, JSON.stringify({ targets: [{ name: 'backend', url: 'https://backend.example.com/apple', payload: 'decoded', signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }] }))
  t.equal(loadConfig({ STOREHOOK_CONFIG: path }).targets[0]!.payload, 'decoded')
})

t.test('each bad value names its variable and the problem', async (t) => {
  const dir = tempDir(t)
  const file = (content: string): string => {
    const p = join(dir, `c${Math.random()}.json`)
    writeFileSync(p, content)
    return p
  }
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT: must be a whole number/],
    [{ PORT: '70000' }, /^PORT: must be between 0 and 65535/],
    [{ VERIFY_SIGNATURES: 'maybe' }, /^VERIFY_SIGNATURES: must be enforce, log or off/],
    [{ ALLOW_UNAUTHENTICATED_V1: 'yes' }, /^ALLOW_UNAUTHENTICATED_V1: must be true or false, got "yes"/],
    [{ ALLOW_UNAUTHENTICATED_V1: '1' }, /^ALLOW_UNAUTHENTICATED_V1: must be true or false/],
    [{ ALLOW_UNAUTHENTICATED_V1: 'TRUE' }, /^ALLOW_UNAUTHENTICATED_V1: must be true or false/],
    [{ FORWARD_TARGETS: 'not a url' }, /^FORWARD_TARGETS: a target URL is not a valid absolute URL/],
    [{ FORWARD_TARGETS: 'ftp://x.example.com/' }, /^FORWARD_TARGETS: a target URL must be http or https/],
    [{ RETRY_MIN_DELAY_MS: '5000', RETRY_MAX_DELAY_MS: '1000' }, /^RETRY_MAX_DELAY_MS: must be at least RETRY_MIN_DELAY_MS/],
    [{ RETRY_GIVE_UP_AFTER_MS: '-1' }, /^RETRY_GIVE_UP_AFTER_MS: must be a whole number/],
    [{ DELIVERY_TIMEOUT_MS: '5' }, /^DELIVERY_TIMEOUT_MS: must be between/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: must be one of/],
    [{ TLS_CERT_PATH: '/x.pem' }, /^TLS_KEY_PATH: TLS_CERT_PATH and TLS_KEY_PATH must be set together/],
    [{ ADMIN_TOKEN: 'short' }, /^ADMIN_TOKEN: must be at least 16 characters/],
    [{ METRICS_TOKEN: 'short' }, /^METRICS_TOKEN: must be at least 16 characters/],
    [{ METRICS_PORT: 'nine' }, /^METRICS_PORT: must be a whole number/],
    [{ METRICS_PORT: '70000' }, /^METRICS_PORT: must be between 0 and 65535/],
    [{ METRICS_PORT: '8080' }, /^METRICS_PORT: must differ from PORT \(8080\)/],
    [{ PORT: '9091', METRICS_PORT: '9091' }, /^METRICS_PORT: must differ from PORT \(9091\)/],
    [{ REQUEST_TIMEOUT_MS: '30s' }, /^REQUEST_TIMEOUT_MS: must be a whole number/],
    [{ REQUEST_TIMEOUT_MS: '0' }, /^REQUEST_TIMEOUT_MS: must be between 100 and/],
    [{ HEADERS_TIMEOUT_MS: '40000' }, /^HEADERS_TIMEOUT_MS: must be at most REQUEST_TIMEOUT_MS \(30000\)/],
    [{ KEEP_ALIVE_TIMEOUT_MS: '-5' }, /^KEEP_ALIVE_TIMEOUT_MS: must be a whole number/],
    [{ MAX_CONNECTIONS: '0' }, /^MAX_CONNECTIONS: must be between 1 and/],
    [{ STOREHOOK_CONFIG: join(dir, 'missing.json') }, /^STOREHOOK_CONFIG: cannot read .*ENOENT/],
    [{ STOREHOOK_CONFIG: file('{nope') }, /^STOREHOOK_CONFIG: .* is not valid JSON/],
    [{ STOREHOOK_CONFIG: file('{"targets": {}}') }, /^STOREHOOK_CONFIG: "targets" must be an array/],
    [{ STOREHOOK_CONFIG: file('{"tragets": []}') }, /^STOREHOOK_CONFIG: unknown top-level field "tragets"/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "timeout": 5}]}') }, /^STOREHOOK_CONFIG targets\[0\]: unknown field "timeout"/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"name": "a b", "url": "https://a.example.com"}]}') }, /"name" must be/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "concurrency": 0}]}') }, /"concurrency" must be a whole number from 1/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "headers": {"User-Agent": "x"}}]}') }, /header "User-Agent" is set by storehook/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "filters": {"environment": ["Sandbox"]}}]}') }, /unknown filter "environment"/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "filters": {"environments": "Sandbox"}}]}') }, /"filters.environments" must be an array/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "signingSecret": "hunter2"}]}') }, /"signingSecret" must be a Standard Webhooks secret/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"name": "x", "url": "https://a.example.com"}, {"name": "x", "url": "https://b.example.com"}]}') }, /two targets are named "x"/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "payload": "json"}]}') }, /^STOREHOOK_CONFIG targets\[0\]: "payload" must be "apple" or "decoded"$/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "payload": ["decoded"]}]}') }, /"payload" must be "apple" or "decoded"/],
    [{ STOREHOOK_CONFIG: file('{"targets": [{"url": "https://a.example.com", "payload": "decoded"}]}') }, /^STOREHOOK_CONFIG targets\[0\]: "payload": "decoded" needs a "signingSecret"/]
  ]
  for (const [env, message] of bad) {
    t.throws(() => loadConfig(env), message, JSON.stringify(env).slice(0, 80))
    t.throws(() => loadConfig(env), ConfigError)
  }
})

t.test('a URL with a token never appears in a config error', async (t) => {
  try {
    loadConfig({ FORWARD_TARGETS: 'https://[bad/secret-token-123' })
    t.fail('should throw')
  } catch (err) {
    t.notMatch((err as Error).message, /secret-token-123/)
  }
})

t.test('DATABASE_URL: postgres:// or postgresql:// selects PostgreSQL; anything else is one line that never repeats the value', async (t) => {
  t.equal(loadConfig({}).databaseUrl, null, 'unset: the SQLite file')
  for (const url of ['postgres://u:pw@db:5432/x', 'postgresql://u@db/x?sslmode=require', 'postgres:///x?host=/run/postgresql']) {
    t.equal(loadConfig({ DATABASE_URL: url }).databaseUrl, url, url)
  }
  for (const url of ['mysql://u:hunter2@db/x', 'hunter2', 'postgres://u:hunter2@[bad/x', 'postgres://u:hunter2@/x']) {
    t.throws(() => loadConfig({ DATABASE_URL: url }), { name: 'ConfigError', message: /^DATABASE_URL: / }, url.replace('hunter2', '***'))
    try { loadConfig({ DATABASE_URL: url }) } catch (err) { t.notMatch((err as Error).message, /hunter2/, 'the value is not repeated') }
  }
})

t.test('the program stops at start with one clear line and exit code 1', async (t) => {
  const dir = tempDir(t)
  const r = await runCli(['serve'], { DATABASE_PATH: join(dir, 'x.db'), RETRY_MIN_DELAY_MS: 'soon' })
  t.equal(r.code, 1)
  t.equal(r.stderr, 'storehook: RETRY_MIN_DELAY_MS: must be a whole number, got "soon"\n')
  // A misspelt opt-in must not start a server that silently refuses (or accepts) V1.
  const v1 = await runCli(['serve'], { DATABASE_PATH: join(dir, 'x.db'), ALLOW_UNAUTHENTICATED_V1: 'yes' })
  t.equal(v1.code, 1)
  t.equal(v1.stderr, 'storehook: ALLOW_UNAUTHENTICATED_V1: must be true or false, got "yes"\n')
})

t.test('a bad connection limit stops start-up with one line naming it', async (t) => {
  const dir = tempDir(t)
  const r = await runCli(['serve'], { DATABASE_PATH: join(dir, 'x.db'), PORT: '0', HOST: '127.0.0.1', MAX_CONNECTIONS: 'many' })
  t.equal(r.code, 1)
  t.equal(r.stderr, 'storehook: MAX_CONNECTIONS: must be a whole number, got "many"\n')
})

t.test('a root certificate file that cannot be used stops start-up with one line', async (t) => {
  const dir = tempDir(t)
  const bogus = join(dir, 'root.pem')
  writeFileSync(bogus, 'not a certificate')
  const r = await runCli(['serve'], { DATABASE_PATH: join(dir, 'x.db'), PORT: '0', HOST: '127.0.0.1', APPLE_ROOT_CERTS: bogus })
  t.equal(r.code, 1)
  t.match(r.stderr, /^storehook: APPLE_ROOT_CERTS: .*root\.pem/)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
})

t.test('a target URL whose credentials are not valid percent-encoding is one config error that never echoes the URL', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'storehook.json')
  writeFileSync(path, JSON.stringify({ targets: [{ url: 'https://user:s3cret%E0%A4%Ass@b.example.com/hook' }] }))
  for (const [variable, env] of [
    ['FORWARD_TARGETS', { FORWARD_TARGETS: 'https://user:s3cret%E0%A4%Ass@a.example.com/hook' }],
    ['FORWARD_TARGETS', { FORWARD_TARGETS: 'https://us%ZZer:pw@a.example.com/hook' }],
    ['STOREHOOK_CONFIG', { STOREHOOK_CONFIG: path }]
  ] as const) {
    try {
      loadConfig(env)
      t.fail(`${variable}: should throw`)
    } catch (err) {
      t.ok(err instanceof ConfigError, `${variable}: a ConfigError, not a URIError`)
      t.match((err as Error).message, new RegExp(`^${variable}.*: a target URL's credentials are not valid percent-encoding$`), `${variable}: says what is wrong`)
      t.notMatch((err as Error).message, /s3cret|us%ZZer|example\.com/, `${variable}: echoes neither the URL nor its credentials`)
    }
  }
  t.equal(loadConfig({ FORWARD_TARGETS: 'https://us%40er:p%25ss@a.example.com/hook' }).targets.length, 1, 'valid percent-encoding is fine')
})

t.test('a config file that is not JSON is reported by line and column, never by its text', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string, string, RegExp]> = [
    // The missing comma sits right after the secret: V8's message quotes the text around it.
    ['a missing comma after a bearer token', '{\n  "targets": [{\n    "url": "https://a.example.com/",\n    "headers": {"Authorization": "Bearer sk_live_TOPSECRET42"}\n    "name": "a"\n  }]\n}\n', /line 5, column 5/],
    ['a stray character after a secret', '{"targets": [{"url": "https://a.example.com/", "headers": {"X-Key": "TOPSECRET42"}x}]}', /line 1, column 83/],
    // V8 says "Unexpected token 'B', ..."ization": Bearer TOP"... is not valid JSON" here.
    ['a bearer token without its quotes', '{"targets": [{"url": "https://a.example.com/",\n "headers": {"Authorization": Bearer TOPSECRET42}}]}', /line 2, column 31/],
    ['a short file with a bad token', '{"a": Bx}', /line 1, column 7/],
    ['a file that stops inside a secret', '{"targets": [{"url": "https://a.example.com/", "headers": {"X-Key": "TOPSECRET42', /at the end of the file/]
  ]
  for (const [name, text, where] of cases) {
    const path = join(dir, `${cases.findIndex((c) => c[0] === name)}.json`)
    writeFileSync(path, text)
    try {
      loadConfig({ STOREHOOK_CONFIG: path })
      t.fail(`${name}: should throw`)
    } catch (err) {
      const message = (err as Error).message
      t.ok(err instanceof ConfigError, `${name}: a ConfigError`)
      t.match(message, /^STOREHOOK_CONFIG: .* is not valid JSON/, `${name}: says so`)
      t.match(message, where, `${name}: says where (${message})`)
      t.notMatch(message, /TOPSECRET|sk_live|Bearer|OPSEC|ECRET42|"name"/, `${name}: quotes nothing of the file`)
    }
  }
})
