// The only reader of process.env and of the config file. Everything is
// validated here, once, at start; the rest of the code receives a frozen,
// typed Config and never looks at the environment again.
import { createPrivateKey } from 'node:crypto'
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { ALERT_EVENTS, ALERT_FORMATS, TARGET_PAYLOADS, type AlertEvent, type AlertFormat, type TargetPayload } from './db/vocabulary.ts'

export type VerifyMode = 'enforce' | 'log' | 'off'

export interface TargetFilters {
  // null means "any"; values are compared exactly as Apple spells them.
  environments: string[] | null
  notificationTypes: string[] | null
  bundleIds: string[] | null
}

export interface TargetConfig {
  name: string
  url: string
  headers: Record<string, string>
  timeoutMs: number
  concurrency: number
  filters: TargetFilters
  signingSecret: string | null
  // 'decoded': the body is storehook's document (src/decoded/document.ts),
  // which only the signature vouches for, so such a target has a signingSecret.
  payload: TargetPayload
}

export interface Config {
  port: number
  host: string
  databasePath: string
  // The PostgreSQL engine's URL (issue 16); null: the SQLite file of
  // databasePath. It carries the password: shown only through maskedUrl
  // (src/db/pg-client.ts), never logged or put in an error as it is.
  databaseUrl: string | null
  targets: TargetConfig[]
  verify: VerifyMode
  appleRootCerts: string[]
  bundleIds: string[] | null
  sharedSecret: string | null
  // V1 is unsigned: under enforce it is refused unless APPLE_SHARED_SECRET
  // checks it or the operator explicitly accepts it unauthenticated.
  allowUnauthenticatedV1: boolean
  retry: { minDelayMs: number; maxDelayMs: number; giveUpAfterMs: number }
  deliveryTimeoutMs: number
  adminToken: string | null
  // Bearer token /metrics then asks for; null: /metrics answers anyone.
  metricsToken: string | null
  // A second listener (plain HTTP, on HOST) that serves /metrics and nothing
  // else, for a scraper on a private network (Fly's cannot send a token);
  // the main listener then has no /metrics. null: /metrics on the main one.
  metricsPort: number | null
  tls: { certPath: string; keyPath: string } | null
  logLevel: string
  bodyLimitBytes: number
  pollIntervalMs: number
  shutdownTimeoutMs: number
  databaseBusyTimeoutMs: number
  quarantine: { maxItems: number; maxBytes: number }
  // 0: keep everything.
  retentionMs: number
  // null: any sender. Entries are CIDR blocks, already expanded from presets.
  allowedSourceIps: Array<{ address: string; prefix: number; family: 'ipv4' | 'ipv6' }> | null
  // Where the sender's address comes from: the socket, Fly's Fly-Client-IP, or X-Forwarded-For.
  trustProxy: 'none' | 'fly' | 'forwarded'
  // App Store Server API (backfill, catch-up, test notification); null: feature off.
  appleApi: AppleApiConfig | null
  // What one client may hold of the listener (see src/limits.ts).
  connections: ConnectionLimits
  // Where people reach storehook (no trailing slash); alerts link to the
  // dashboard with it. null: alerts carry no link.
  publicUrl: string | null
  alerts: AlertsConfig
}

// One place alerts go (issue 17): ALERT_URLS, or the config file's `alerts`.
export interface AlertDestination {
  // Stored in every alert message row and shown: never the URL, which is
  // the destination's secret for Slack and Discord.
  name: string
  url: string
  format: AlertFormat
  // null: every event.
  events: AlertEvent[] | null
  headers: Record<string, string>
  // JSON destinations: Standard Webhooks signature, as targets get.
  signingSecret: string | null
  // Email destinations: who it is from and to.
  email: { from: string; to: string[] } | null
}

export interface AlertsConfig {
  destinations: AlertDestination[]
  targetFailingAfterMs: number
  // 0: apple.silent is off.
  appleSilentAfterMs: number
  // The same for Sandbox; 0 (the default): not watched.
  appleSilentSandboxAfterMs: number
  // How often the monitor reads the facts.
  checkIntervalMs: number
  // Grouped events (deliveries.dead, quarantine.received): at most one alert
  // per subject per window.
  groupWindowMs: number
}

export interface ConnectionLimits {
  // From a request's first byte to its last; slower bodies get 408.
  requestTimeoutMs: number
  // From a connection's first byte (or its opening) to the end of the headers.
  headersTimeoutMs: number
  // How long a connection may sit idle between one answer and the next request.
  keepAliveTimeoutMs: number
  // Open sockets at once; the ones over it are closed as they arrive.
  maxConnections: number
}

export class ConfigError extends Error {
  constructor (variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const DEFAULT_CONCURRENCY = 4
// BODY_LIMIT_BYTES' ceiling: no stored body is ever larger, whatever the
// limit was when it came in (src/outbox/body-codec.ts bounds inflation by it).
export const MAX_BODY_LIMIT_BYTES = 64 * 1_048_576
// Targets may add headers, but never the ones storehook owns on every forward.
const RESERVED_HEADERS = new Set([
  'content-type', 'content-length', 'host', 'user-agent', 'x-storehook-notification-id',
  'x-storehook-attempt', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'transfer-encoding', 'connection'
])

// An HTTP field value (RFC 9110) as every target will take it: printable
// ASCII, space and tab. CR, LF and NUL would split or end the request (undici
// refuses them, so every delivery would fail until the config is fixed);
// undici refuses characters above U+00FF too, and would send U+0080-U+00FF as
// single Latin-1 bytes rather than the UTF-8 the file holds, which no
// receiver reads back as written. Tokens and keys are ASCII.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/

function str (env: Env, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

function int (env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(env, name)
  if (raw === undefined) return def
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`)
  return n
}

// A bearer token people choose: long enough that guessing it is hopeless.
function token (env: Env, name: string): string | null {
  const value = str(env, name) ?? null
  if (value !== null && value.length < 16) throw new ConfigError(name, 'must be at least 16 characters')
  return value
}

// Only the two words: a "yes" or "1" that silently meant false would be worse
// than a refusal to start.
function bool (env: Env, name: string, def: boolean): boolean {
  const raw = str(env, name)
  if (raw === undefined) return def
  if (raw === 'true' || raw === 'false') return raw === 'true'
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

function list (env: Env, name: string): string[] | null {
  const raw = str(env, name)
  if (raw === undefined) return null
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return items.length === 0 ? null : items
}

function checkUrl (variable: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw === '') throw new ConfigError(variable, 'a target needs a "url"')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    // Never echo the URL: it may carry a token.
    throw new ConfigError(variable, 'a target URL is not a valid absolute URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(variable, `a target URL must be http or https, got ${url.protocol}`)
  }
  // The delivery client decodes them into a Basic Authorization header: a
  // URIError there would stop start-up with a stack trace. Never echoed.
  try {
    decodeURIComponent(url.username)
    decodeURIComponent(url.password)
  } catch {
    throw new ConfigError(variable, 'a target URL\'s credentials are not valid percent-encoding')
  }
  return url.toString()
}

function hostName (url: string): string {
  return new URL(url).host
}

function stringArray (variable: string, field: string, raw: unknown): string[] | null {
  if (raw === undefined || raw === null) return null
  if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'string' || v === '')) {
    throw new ConfigError(variable, `"${field}" must be an array of non-empty strings`)
  }
  return raw.length === 0 ? null : [...raw]
}

function positive (variable: string, field: string, raw: unknown, def: number, max: number): number {
  if (raw === undefined) return def
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > max) {
    throw new ConfigError(variable, `"${field}" must be a whole number from 1 to ${max}`)
  }
  return raw
}

function targetFromFile (variable: string, raw: unknown, index: number, defaults: { timeoutMs: number }): TargetConfig {
  const where = `${variable} targets[${index}]`
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(where, 'must be an object')
  const t = raw as Record<string, unknown>
  const known = new Set(['name', 'url', 'headers', 'timeoutMs', 'concurrency', 'filters', 'signingSecret', 'payload'])
  for (const key of Object.keys(t)) if (!known.has(key)) throw new ConfigError(where, `unknown field "${key}"`)
  const url = checkUrl(where, t.url)
  checkName(where, t.name)
  const headers = headersOf(where, t.headers)
  let filters: TargetFilters = { environments: null, notificationTypes: null, bundleIds: null }
  if (t.filters !== undefined) {
    if (typeof t.filters !== 'object' || t.filters === null || Array.isArray(t.filters)) {
      throw new ConfigError(where, '"filters" must be an object')
    }
    const f = t.filters as Record<string, unknown>
    for (const key of Object.keys(f)) {
      if (!['environments', 'notificationTypes', 'bundleIds'].includes(key)) throw new ConfigError(where, `unknown filter "${key}"`)
    }
    filters = {
      environments: stringArray(where, 'filters.environments', f.environments),
      notificationTypes: stringArray(where, 'filters.notificationTypes', f.notificationTypes),
      bundleIds: stringArray(where, 'filters.bundleIds', f.bundleIds)
    }
  }
  const signingSecret = signingSecretOf(where, t.signingSecret)
  const payload = (t.payload ?? 'apple') as TargetPayload
  if (!TARGET_PAYLOADS.includes(payload)) throw new ConfigError(where, `"payload" must be ${TARGET_PAYLOADS.map((p) => `"${p}"`).join(' or ')}`)
  // Apple's signature covers Apple's bytes only: a receiver can trust
  // storehook's document through storehook's own signature alone.
  if (payload === 'decoded' && signingSecret === null) {
    throw new ConfigError(where, '"payload": "decoded" needs a "signingSecret": the receiver can only trust storehook\'s document through its Standard Webhooks signature')
  }
  return {
    name: typeof t.name === 'string' ? t.name : hostName(url),
    url,
    headers,
    timeoutMs: positive(where, 'timeoutMs', t.timeoutMs, defaults.timeoutMs, 600_000),
    concurrency: positive(where, 'concurrency', t.concurrency, DEFAULT_CONCURRENCY, 256),
    filters,
    signingSecret,
    payload
  }
}

function checkName (where: string, name: unknown): void {
  if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name))) {
    throw new ConfigError(where, '"name" must be 1-64 letters, digits, dots, dashes or underscores')
  }
}

function signingSecretOf (where: string, raw: unknown): string | null {
  if (raw === undefined) return null
  if (typeof raw !== 'string' || !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(raw)) {
    throw new ConfigError(where, '"signingSecret" must be a Standard Webhooks secret of the form whsec_<base64>')
  }
  return raw
}

// A file entry's extra headers, checked: a valid name, not one storehook
// sets itself, and a value every receiver takes.
function headersOf (where: string, raw: unknown): Record<string, string> {
  const headers: Array<[string, string]> = []
  if (raw !== undefined) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigError(where, '"headers" must be an object of strings')
    }
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
        throw new ConfigError(where, `header "${k}" must be a valid name with a string value`)
      }
      if (RESERVED_HEADERS.has(k.toLowerCase())) throw new ConfigError(where, `header "${k}" is set by storehook and cannot be overridden`)
      // Never echo the value: it is often a token.
      if (!FIELD_VALUE.test(v)) throw new ConfigError(where, `header "${k}" has a value that is not a valid HTTP header value (only printable ASCII, space and tab; no CR, LF or other control characters)`)
      headers.push([k, v])
    }
  }
  // fromEntries defines each name as its own property: an assignment would
  // turn a header named __proto__ into the object's prototype, silently dropped.
  return Object.fromEntries(headers)
}
// Apple sends App Store Server Notifications from 17.0.0.0/8 (the 17.58.0.0/18
// and 17.58.192.0/18 ranges today): the preset allows the whole block Apple owns.
const SOURCE_PRESETS: Record<string, string[]> = { apple: ['17.0.0.0/8'] }

function cidrs (env: Env): Config['allowedSourceIps'] {
  const items = list(env, 'ALLOWED_SOURCE_IPS')
  if (items === null) return null
  const out: NonNullable<Config['allowedSourceIps']> = []
  // Own keys only: `constructor` or `__proto__` in the variable is an address to refuse, not a preset.
  for (const item of items.flatMap((i) => Object.hasOwn(SOURCE_PRESETS, i.toLowerCase()) ? SOURCE_PRESETS[i.toLowerCase()]! : [i])) {
    const [address = '', bits] = item.split('/')
    const family = isIP(address)
    if (family === 0) throw new ConfigError('ALLOWED_SOURCE_IPS', `"${item}" is not an IP address, a CIDR block or the preset "apple"`)
    const max = family === 4 ? 32 : 128
    const prefix = bits === undefined ? max : Number(bits)
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new ConfigError('ALLOWED_SOURCE_IPS', `"${item}" has a prefix length outside 0-${max}`)
    }
    out.push({ address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' })
  }
  return out
}

// Where JSON.parse stopped, as line and column: never its message, which
// quotes up to 10 characters each side of the fault (the file holds bearer
// headers and signing secrets). V8 states the offset ("at position N") or,
// for an unexpected token, only that quote: "..." + 10 characters before and
// after the fault + "...", or the whole text when it is short. The quote is
// only used to find the offset in the file, and only the offset is shown.
function jsonErrorPlace (text: string, message: string): string {
  let offset: number | null = null
  const at = /at position (\d+)/.exec(message)
  if (at !== null) {
    offset = Number(at[1])
  } else if (/end of JSON input/.test(message)) {
    offset = text.length
  } else {
    const quoted = /^Unexpected token '(.)', (\.\.\.)?"([\s\S]*)"(?:\.\.\.)? is not valid JSON$/.exec(message)
    if (quoted !== null) {
      const [, token, cutBefore, context] = quoted as unknown as [string, string, string | undefined, string]
      const found = text.indexOf(context)
      if (found !== -1) offset = found + (cutBefore !== undefined ? 10 : Math.max(0, context.lastIndexOf(token)))
    }
  }
  if (offset === null) return 'JSON.parse gave no position'
  if (offset >= text.length) return 'it ends too early: at the end of the file'
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  const column = offset - before.lastIndexOf('\n')
  return `at line ${line}, column ${column}`
}

function readConfigFile (path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('STOREHOOK_CONFIG', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError('STOREHOOK_CONFIG', `${path} is not valid JSON (${jsonErrorPlace(text, (err as Error).message)})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('STOREHOOK_CONFIG', `${path} must hold a JSON object`)
  }
  const known = new Set(['targets', 'apple', 'alerts'])
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError('STOREHOOK_CONFIG', `unknown top-level field "${key}" in ${path}`)
  }
  return parsed as Record<string, unknown>
}

// Targets named after their host (FORWARD_TARGETS, or a file entry without a
// name) get host, host-2, ...: the name is stored in every delivery row, so it
// must be unique and stable across restarts. Two explicit equal names are an error.
function uniqueNames<T extends { name: string; explicit: boolean }> (targets: T[], what = 'targets'): Array<Omit<T, 'explicit'>> {
  const taken = new Set<string>()
  for (const t of targets) {
    if (!t.explicit) continue
    if (taken.has(t.name)) throw new ConfigError('STOREHOOK_CONFIG', `two ${what} are named "${t.name}"`)
    taken.add(t.name)
  }
  return targets.map(({ explicit, ...t }) => {
    if (explicit) return t
    let name = t.name
    for (let n = 2; taken.has(name); n++) name = `${t.name}-${n}`
    taken.add(name)
    return { ...t, name }
  })
}

// Defaults for both ways storehook is reached. Behind Fly's proxy (or Caddy,
// nginx): the proxy keeps connections to the app open between requests and
// reuses them, so the app must not be the side that closes an idle one first,
// or a request the proxy writes onto a connection the app is closing is lost
// (a 502 to Apple). Fly does not document how long its proxy keeps an idle
// connection to the app: users report 60 s, and hyper (the Rust HTTP library
// fly-proxy is built on) drops idle pooled connections after 90 s by default;
// nginx's upstream keepalive_timeout is 60 s, AWS ALB's 60 s, Caddy's 2 min.
// 95 s outlasts all but Caddy (README says to raise it there); Node closes
// the connection 1 s after that, past the `Keep-Alive: timeout=95` it
// advertises. Directly exposed, each idle connection costs a socket for that
// long, and MAX_CONNECTIONS bounds how many there are.
// Apple sends a few KB in one go: 30 s for a whole request and 10 s for its
// headers leave any real sender a wide margin and let nobody hold a socket
// for Node's 5 minutes. The cap sits above fly.toml's hard_limit (1000
// requests) so Fly sheds load before storehook refuses a connection.
function connectionLimits (env: Env): ConnectionLimits {
  const requestTimeoutMs = int(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 600_000)
  const headersTimeoutMs = int(env, 'HEADERS_TIMEOUT_MS', Math.min(10_000, requestTimeoutMs), 100, 600_000)
  // The headers are part of the request: a longer window for them would never
  // apply, and Node refuses one at construction.
  if (headersTimeoutMs > requestTimeoutMs) throw new ConfigError('HEADERS_TIMEOUT_MS', `must be at most REQUEST_TIMEOUT_MS (${requestTimeoutMs})`)
  return {
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: int(env, 'KEEP_ALIVE_TIMEOUT_MS', 95_000, 100, 3_600_000),
    maxConnections: int(env, 'MAX_CONNECTIONS', 2048, 1, 1_000_000)
  }
}

function trustProxy (env: Env): Config['trustProxy'] {
  const v = str(env, 'TRUST_PROXY') ?? 'none'
  if (v !== 'none' && v !== 'fly' && v !== 'forwarded') throw new ConfigError('TRUST_PROXY', `must be none, fly or forwarded, got "${v}"`)
  return v
}

export function loadConfig (env: Env = process.env): Config {
  const deliveryTimeoutMs = int(env, 'DELIVERY_TIMEOUT_MS', 10_000, 100, 600_000)
  const minDelayMs = int(env, 'RETRY_MIN_DELAY_MS', 1000, 1)
  const maxDelayMs = int(env, 'RETRY_MAX_DELAY_MS', 3_600_000, 1)
  if (maxDelayMs < minDelayMs) throw new ConfigError('RETRY_MAX_DELAY_MS', `must be at least RETRY_MIN_DELAY_MS (${minDelayMs})`)
  const giveUpAfterMs = int(env, 'RETRY_GIVE_UP_AFTER_MS', 691_200_000, 1)

  const verify = str(env, 'VERIFY_SIGNATURES') ?? 'enforce'
  if (verify !== 'enforce' && verify !== 'log' && verify !== 'off') {
    throw new ConfigError('VERIFY_SIGNATURES', `must be enforce, log or off, got "${verify}"`)
  }
  const logLevel = str(env, 'LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)

  const certPath = str(env, 'TLS_CERT_PATH')
  const keyPath = str(env, 'TLS_KEY_PATH')
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new ConfigError(certPath === undefined ? 'TLS_CERT_PATH' : 'TLS_KEY_PATH', 'TLS_CERT_PATH and TLS_KEY_PATH must be set together')
  }
  // Checked now so a typo is one clear line at start, not a TLS error on Apple's first post.
  for (const [name, path] of [['TLS_CERT_PATH', certPath], ['TLS_KEY_PATH', keyPath]] as const) {
    if (path === undefined) continue
    try {
      accessSync(path, fsConstants.R_OK)
    } catch (err) {
      throw new ConfigError(name, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    // A directory is readable too, and would fail only when the file is read.
    if (!statSync(path).isFile()) throw new ConfigError(name, `cannot read ${path}: not a file`)
  }

  const targets: Array<TargetConfig & { explicit: boolean }> = []
  for (const raw of list(env, 'FORWARD_TARGETS') ?? []) {
    const url = checkUrl('FORWARD_TARGETS', raw)
    targets.push({
      explicit: false,
      name: hostName(url),
      url,
      headers: {},
      timeoutMs: deliveryTimeoutMs,
      concurrency: DEFAULT_CONCURRENCY,
      filters: { environments: null, notificationTypes: null, bundleIds: null },
      signingSecret: null,
      payload: 'apple'
    })
  }
  const configPath = str(env, 'STOREHOOK_CONFIG')
  const file = configPath === undefined ? null : readConfigFile(configPath)
  if (file !== null) {
    if (file.targets !== undefined) {
      if (!Array.isArray(file.targets)) throw new ConfigError('STOREHOOK_CONFIG', '"targets" must be an array')
      file.targets.forEach((t, i) => targets.push({
        ...targetFromFile('STOREHOOK_CONFIG', t, i, { timeoutMs: deliveryTimeoutMs }),
        explicit: typeof (t as { name?: unknown }).name === 'string'
      }))
    }
  }
  const named = uniqueNames(targets)

  const port = int(env, 'PORT', 8080, 0, 65535)
  const metricsPort = str(env, 'METRICS_PORT') === undefined ? null : int(env, 'METRICS_PORT', 0, 0, 65535)
  if (metricsPort !== null && metricsPort !== 0 && metricsPort === port) throw new ConfigError('METRICS_PORT', `must differ from PORT (${port})`)

  return Object.freeze({
    port,
    host: str(env, 'HOST') ?? '0.0.0.0',
    databasePath: str(env, 'DATABASE_PATH') ?? './data/storehook.db',
    databaseUrl: databaseUrl(env),
    targets: named,
    verify,
    appleRootCerts: list(env, 'APPLE_ROOT_CERTS') ?? [],
    bundleIds: list(env, 'APPLE_BUNDLE_IDS'),
    sharedSecret: str(env, 'APPLE_SHARED_SECRET') ?? null,
    allowUnauthenticatedV1: bool(env, 'ALLOW_UNAUTHENTICATED_V1', false),
    retry: { minDelayMs, maxDelayMs, giveUpAfterMs },
    deliveryTimeoutMs,
    adminToken: token(env, 'ADMIN_TOKEN'),
    metricsToken: token(env, 'METRICS_TOKEN'),
    metricsPort,
    tls: certPath !== undefined && keyPath !== undefined ? { certPath, keyPath } : null,
    logLevel,
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, MAX_BODY_LIMIT_BYTES),
    pollIntervalMs: int(env, 'POLL_INTERVAL_MS', 1000, 10, 60_000),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    databaseBusyTimeoutMs: int(env, 'DATABASE_BUSY_TIMEOUT_MS', 2000, 0, 60_000),
    retentionMs: int(env, 'RETENTION_DAYS', 30, 0, 36_500) * 86_400_000,
    allowedSourceIps: cidrs(env),
    trustProxy: trustProxy(env),
    appleApi: appleApi(env, file),
    connections: connectionLimits(env),
    publicUrl: publicUrl(env),
    alerts: alertsConfig(env, file),
    quarantine: {
      maxItems: int(env, 'QUARANTINE_MAX_ITEMS', 10_000, 0),
      maxBytes: int(env, 'QUARANTINE_MAX_BYTES', 64 * 1_048_576, 0)
    }
  })
}

// ---- Alerts (issue 17) ---------------------------------------------------

// An http(s) address a variable names (not a secret: it is echoed).
function httpUrl (variable: string, raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(variable, 'is not a valid absolute URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(variable, `must be http or https, got ${url.protocol}`)
  return url
}

function publicUrl (env: Env): string | null {
  const raw = str(env, 'PUBLIC_URL')
  if (raw === undefined) return null
  const url = httpUrl('PUBLIC_URL', raw)
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('PUBLIC_URL', 'must be a plain address (no credentials, query or fragment): it is put in every alert')
  }
  return url.toString().replace(/\/+$/, '')
}

// The format a URL's own host says, when the entry does not: Slack's and
// Discord's incoming webhooks, or an SMTP server.
export function alertFormatOf (url: URL): AlertFormat {
  if (url.protocol === 'smtp:' || url.protocol === 'smtps:') return 'email'
  if (url.hostname === 'hooks.slack.com') return 'slack'
  if (/^(?:.+\.)?discord(?:app)?\.com$/.test(url.hostname) && url.pathname.startsWith('/api/webhooks/')) return 'discord'
  return 'json'
}

const EMAIL_ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/

function emailOf (where: string, from: unknown, to: unknown): { from: string; to: string[] } {
  const recipients = typeof to === 'string' ? to.split(',').map((x) => x.trim()).filter(Boolean) : to
  if (typeof from !== 'string' || !EMAIL_ADDRESS.test(from)) throw new ConfigError(where, 'an email destination needs "from", one address')
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.some((x) => typeof x !== 'string' || !EMAIL_ADDRESS.test(x))) {
    throw new ConfigError(where, 'an email destination needs "to", one or more addresses')
  }
  return { from, to: recipients as string[] }
}

// One destination. The URL is never echoed in an error: Slack's and
// Discord's carry their token in the path, SMTP's its password.
function alertDestination (where: string, raw: Record<string, unknown>): AlertDestination & { explicit: boolean } {
  if (typeof raw.url !== 'string' || raw.url === '') throw new ConfigError(where, 'an alert destination needs a "url"')
  let url: URL
  try {
    url = new URL(raw.url)
  } catch {
    throw new ConfigError(where, 'an alert URL is not a valid absolute URL')
  }
  if (!['http:', 'https:', 'smtp:', 'smtps:'].includes(url.protocol)) throw new ConfigError(where, `an alert URL must be http, https, smtp or smtps, got ${url.protocol}`)
  checkName(where, raw.name)
  const detected = alertFormatOf(url)
  const format = raw.format ?? detected
  if (typeof format !== 'string' || !(ALERT_FORMATS as readonly string[]).includes(format)) throw new ConfigError(where, `"format" must be one of ${ALERT_FORMATS.join(', ')}`)
  if ((format === 'email') !== (detected === 'email')) throw new ConfigError(where, 'the email format takes an smtp:// or smtps:// URL, and only it does')
  let events: AlertEvent[] | null = null
  if (raw.events !== undefined) {
    const list = stringArray(where, 'events', raw.events)
    const unknown = (list ?? []).filter((e) => !(ALERT_EVENTS as readonly string[]).includes(e))
    if (unknown.length > 0) throw new ConfigError(where, `unknown alert event(s) ${unknown.join(', ')}; known: ${ALERT_EVENTS.join(', ')}`)
    events = list as AlertEvent[] | null
  }
  // The sender and recipients of an ALERT_URLS smtp URL ride in its query
  // (?from=a@x&to=b@x&to=c@x: ALERT_URLS itself is split on commas).
  const email = format === 'email'
    ? emailOf(where, raw.from ?? url.searchParams.get('from') ?? undefined, raw.to ?? url.searchParams.getAll('to'))
    : null
  if (email !== null) url.search = ''
  return {
    explicit: typeof raw.name === 'string',
    name: typeof raw.name === 'string' ? raw.name : url.host,
    url: url.toString(),
    format: format as AlertFormat,
    events,
    headers: headersOf(where, raw.headers),
    signingSecret: signingSecretOf(where, raw.signingSecret),
    email
  }
}

function alertsConfig (env: Env, file: Record<string, unknown> | null): AlertsConfig {
  const destinations: Array<AlertDestination & { explicit: boolean }> = []
  for (const url of list(env, 'ALERT_URLS') ?? []) destinations.push(alertDestination('ALERT_URLS', { url }))
  const fromFile = file?.alerts
  if (fromFile !== undefined) {
    if (!Array.isArray(fromFile)) throw new ConfigError('STOREHOOK_CONFIG', '"alerts" must be an array')
    fromFile.forEach((raw, i) => {
      const where = `STOREHOOK_CONFIG alerts[${i}]`
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(where, 'must be an object')
      const known = new Set(['name', 'url', 'format', 'events', 'headers', 'signingSecret', 'from', 'to'])
      for (const key of Object.keys(raw)) if (!known.has(key)) throw new ConfigError(where, `unknown field "${key}"`)
      destinations.push(alertDestination(where, raw as Record<string, unknown>))
    })
  }
  return {
    destinations: uniqueNames(destinations, 'alert destinations'),
    targetFailingAfterMs: int(env, 'ALERT_TARGET_FAILING_AFTER_MS', 600_000, 1),
    appleSilentAfterMs: int(env, 'ALERT_APPLE_SILENT_AFTER_MS', 86_400_000, 0),
    appleSilentSandboxAfterMs: int(env, 'ALERT_APPLE_SILENT_SANDBOX_AFTER_MS', 0, 0),
    checkIntervalMs: int(env, 'ALERT_CHECK_INTERVAL_MS', 30_000, 10, 3_600_000),
    groupWindowMs: int(env, 'ALERT_GROUP_WINDOW_MS', 3_600_000, 1)
  }
}

// postgres:// and postgresql:// (libpq's two spellings) select the PostgreSQL engine.
// The URL as it may be shown (logs, errors, `storehook migrate`): the
// password replaced by a mask, whether it is in the userinfo or in a
// `password` query parameter. Never throws: a URL that does not parse is
// shown as its scheme alone.
export function maskedUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    if (u.searchParams.has('password')) u.searchParams.set('password', '***')
    return u.toString()
  } catch {
    return `${url.split(':')[0] ?? 'postgres'}://(unparsable URL)`
  }
}

export function isPostgresUrl (value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value)
}

// DATABASE_URL, checked without ever repeating it: it holds a password, and
// the error line is printed and logged.
function databaseUrl (env: Env): string | null {
  const url = str(env, 'DATABASE_URL')
  if (url === undefined) return null
  if (!isPostgresUrl(url)) throw new ConfigError('DATABASE_URL', 'must start with postgres:// or postgresql:// (the value is not shown: it may hold a password)')
  let host: string
  try {
    host = new URL(url).hostname
  } catch {
    throw new ConfigError('DATABASE_URL', 'is not a valid URL (the value is not shown: it may hold a password)')
  }
  // libpq allows an empty host (a Unix socket given as ?host=/path).
  if (host === '' && !/[?&]host=/.test(url)) throw new ConfigError('DATABASE_URL', 'names no host (the value is not shown: it may hold a password)')
  return url
}

// ---- App Store Server API (issue 6) -------------------------------------

export interface AppleApiApp {
  bundleId: string
  issuerId: string
  keyId: string
  // The .p8 key's PEM text, read and checked at start. Never logged.
  privateKeyPem: string
}

export interface AppleApiConfig {
  apps: AppleApiApp[]
  baseUrls: { Production: string; Sandbox: string }
  // 0: no periodic catch-up (the one at start still runs).
  catchUpIntervalMs: number
  catchUpMarginMs: number
}

const APPLE_KEY_VARS = ['APPLE_ISSUER_ID', 'APPLE_KEY_ID', 'APPLE_PRIVATE_KEY_PATH', 'APPLE_BUNDLE_ID'] as const

function appleKey (variable: string, path: string): string {
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(variable, `cannot read the App Store Connect key ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let key
  try {
    key = createPrivateKey(pem)
  } catch {
    throw new ConfigError(variable, `${path} is not a PEM private key (expected the .p8 file downloaded from App Store Connect)`)
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ConfigError(variable, `${path} is not an EC P-256 key (App Store Connect keys are ES256)`)
  }
  return pem
}

// The apps come from APPLE_BUNDLE_ID (one app, keys from APPLE_*), or from the
// config file's `apple.apps` (several apps; each may override the keys, which
// otherwise come from the environment). All unset: the feature is off.
function appleApi (env: Env, file: Record<string, unknown> | null): AppleApiConfig | null {
  const fromEnv = Object.fromEntries(APPLE_KEY_VARS.map((k) => [k, str(env, k)])) as Record<typeof APPLE_KEY_VARS[number], string | undefined>
  const fileApple = file?.apple
  let rawApps: unknown[] | null = null
  if (fileApple !== undefined) {
    if (typeof fileApple !== 'object' || fileApple === null || Array.isArray(fileApple)) throw new ConfigError('STOREHOOK_CONFIG', '"apple" must be an object')
    for (const key of Object.keys(fileApple)) if (key !== 'apps') throw new ConfigError('STOREHOOK_CONFIG', `unknown field "apple.${key}"`)
    const apps = (fileApple as { apps?: unknown }).apps
    if (!Array.isArray(apps) || apps.length === 0) throw new ConfigError('STOREHOOK_CONFIG', '"apple.apps" must be a non-empty array')
    if (fromEnv.APPLE_BUNDLE_ID !== undefined) throw new ConfigError('APPLE_BUNDLE_ID', 'set either APPLE_BUNDLE_ID or "apple.apps" in STOREHOOK_CONFIG, not both')
    rawApps = apps
  }
  const anySet = Object.values(fromEnv).some((v) => v !== undefined) || rawApps !== null
  if (!anySet) return null
  const apps: AppleApiApp[] = []
  const keys = new Map<string, string>()
  const keyFor = (variable: string, path: string): string => {
    if (!keys.has(path)) keys.set(path, appleKey(variable, path))
    return keys.get(path)!
  }
  const need = (name: typeof APPLE_KEY_VARS[number], value: string | undefined, where: string): string => {
    if (value === undefined) {
      const missing = APPLE_KEY_VARS.filter((k) => fromEnv[k] === undefined && !(k === 'APPLE_BUNDLE_ID' && rawApps !== null))
      throw new ConfigError(name, `App Store Server API keys are partly set${where}: also set ${missing.join(', ')} (or unset them all to turn the feature off)`)
    }
    return value
  }
  if (rawApps === null) {
    apps.push({
      bundleId: need('APPLE_BUNDLE_ID', fromEnv.APPLE_BUNDLE_ID, ''),
      issuerId: need('APPLE_ISSUER_ID', fromEnv.APPLE_ISSUER_ID, ''),
      keyId: need('APPLE_KEY_ID', fromEnv.APPLE_KEY_ID, ''),
      privateKeyPem: keyFor('APPLE_PRIVATE_KEY_PATH', need('APPLE_PRIVATE_KEY_PATH', fromEnv.APPLE_PRIVATE_KEY_PATH, ''))
    })
  } else {
    rawApps.forEach((raw, i) => {
      const where = `STOREHOOK_CONFIG apple.apps[${i}]`
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(where, 'must be an object')
      const a = raw as Record<string, unknown>
      for (const key of Object.keys(a)) {
        if (!['bundleId', 'issuerId', 'keyId', 'privateKeyPath'].includes(key)) throw new ConfigError(where, `unknown field "${key}"`)
        if (typeof a[key] !== 'string' || a[key] === '') throw new ConfigError(where, `"${key}" must be a non-empty string`)
      }
      if (a.bundleId === undefined) throw new ConfigError(where, 'needs a "bundleId"')
      if (apps.some((x) => x.bundleId === a.bundleId)) throw new ConfigError(where, `bundle ID "${String(a.bundleId)}" is listed twice`)
      const path = (a.privateKeyPath as string | undefined) ?? need('APPLE_PRIVATE_KEY_PATH', fromEnv.APPLE_PRIVATE_KEY_PATH, ` (${where} has no "privateKeyPath")`)
      apps.push({
        bundleId: a.bundleId as string,
        issuerId: (a.issuerId as string | undefined) ?? need('APPLE_ISSUER_ID', fromEnv.APPLE_ISSUER_ID, ` (${where} has no "issuerId")`),
        keyId: (a.keyId as string | undefined) ?? need('APPLE_KEY_ID', fromEnv.APPLE_KEY_ID, ` (${where} has no "keyId")`),
        privateKeyPem: keyFor(a.privateKeyPath !== undefined ? where : 'APPLE_PRIVATE_KEY_PATH', path)
      })
    })
  }
  let baseUrls = { Production: 'https://api.storekit.itunes.apple.com', Sandbox: 'https://api.storekit-sandbox.itunes.apple.com' }
  const base = str(env, 'APPLE_API_BASE_URL')
  if (base !== undefined) {
    httpUrl('APPLE_API_BASE_URL', base)
    const one = base.replace(/\/+$/, '')
    baseUrls = { Production: one, Sandbox: one }
  }
  return {
    apps,
    baseUrls,
    catchUpIntervalMs: int(env, 'CATCH_UP_INTERVAL_MS', 3_600_000, 0, 7 * 86_400_000),
    catchUpMarginMs: int(env, 'CATCH_UP_MARGIN_MS', 600_000, 0, 7 * 86_400_000)
  }
}
