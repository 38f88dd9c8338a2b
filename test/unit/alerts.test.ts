// The pure parts of alerts (issue 17): destinations as config.ts reads them,
// what each message says in each format, the sender's verdict on an
// attempt, and the episode decisions.
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { decide, failingSince, type Observed, type Thresholds } from '../../src/alerts/episodes.ts'
import { bodyFor, describe, duration } from '../../src/alerts/messages.ts'
import { ALERT_GIVE_UP_AFTER_MS, ALERT_MAX_DELAY_MS, alertVerdict } from '../../src/alerts/verdict.ts'
import type { AlertEpisode, TargetHealth } from '../../src/outbox/engine.ts'
import { configFile } from '../helpers/app.ts'

const SLACK = 'https://hooks.slack.com/services/T000/B000/SECRETslackTOKEN'
const DISCORD = 'https://discord.com/api/webhooks/123/SECRETdiscordTOKEN'

t.test('ALERT_URLS: the format from the URL, names from the host, defaults of the thresholds', async (t) => {
  const c = loadConfig({ ALERT_URLS: `${SLACK}, ${DISCORD},https://ops.example.com/hook?key=SECRETjson,https://ops.example.com/other` })
  t.same(c.alerts.destinations.map((d) => [d.name, d.format]), [
    ['hooks.slack.com', 'slack'], ['discord.com', 'discord'], ['ops.example.com', 'json'], ['ops.example.com-2', 'json']
  ])
  t.equal(c.alerts.targetFailingAfterMs, 600_000)
  t.equal(c.alerts.appleSilentAfterMs, 86_400_000)
  t.equal(c.publicUrl, null)
  t.equal(loadConfig({ ALERT_APPLE_SILENT_AFTER_MS: '0' }).alerts.appleSilentAfterMs, 0, '0 turns apple.silent off')
  t.equal(loadConfig({ PUBLIC_URL: 'https://hook.example.com/' }).publicUrl, 'https://hook.example.com')
  t.same(loadConfig({ ALERT_URLS: 'https://discordapp.com/api/webhooks/1/x' }).alerts.destinations[0]!.format, 'discord')
  t.same(loadConfig({ ALERT_URLS: 'https://discord.com/not-a-webhook' }).alerts.destinations[0]!.format, 'json', 'only the webhook path is Discord\'s')
  const mail = loadConfig({ ALERT_URLS: 'smtp://user:pw@mail.example.com:2525?from=storehook@example.com&to=a@example.com&to=b@example.com' }).alerts.destinations[0]!
  t.same([mail.format, mail.email, new URL(mail.url).search], ['email', { from: 'storehook@example.com', to: ['a@example.com', 'b@example.com'] }, ''])
})

t.test('the config file\'s alerts: format, events, headers, signing secret, email; refusals never echo the URL', async (t) => {
  const path = configFile(t, {
    alerts: [
      { name: 'team', url: 'http://127.0.0.1:9/x', format: 'slack', events: ['target.failing', 'target.recovered'] },
      { name: 'pager', url: 'https://pager.example.com/in', headers: { authorization: 'Bearer abc' }, signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
      { name: 'mail', url: 'smtps://mail.example.com', from: 'a@example.com', to: ['ops@example.com'] }
    ]
  })
  const c = loadConfig({ STOREHOOK_CONFIG: path })
  t.match(c.alerts.destinations, [
    { name: 'team', format: 'slack', events: ['target.failing', 'target.recovered'] },
    { name: 'pager', format: 'json', events: null, headers: { authorization: 'Bearer abc' }, signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
    { name: 'mail', format: 'email', email: { from: 'a@example.com', to: ['ops@example.com'] } }
  ])
  const refused = (alerts: unknown[], pattern: RegExp): void => {
    const err = t.throws(() => loadConfig({ STOREHOOK_CONFIG: configFile(t, { alerts }) }), ConfigError) as unknown as Error
    t.match(err.message, pattern)
    t.notMatch(err.message, /SECRET/, 'the URL is not repeated')
  }
  refused([{ url: 'ftp://SECRET@x' }], /must be http, https, smtp or smtps/)
  refused([{ url: 'not a url SECRET' }], /not a valid absolute URL/)
  refused([{ url: `${SLACK}`, events: ['target.down'] }], /unknown alert event\(s\) target.down/)
  refused([{ url: `${SLACK}`, format: 'teams' }], /"format" must be one of slack, discord, json, email/)
  refused([{ url: 'smtp://SECRET@mail.example.com' }], /needs "from"/)
  refused([{ url: `${SLACK}`, format: 'email' }], /the email format takes an smtp/)
  refused([{ url: `${SLACK}`, name: 'x' }, { url: DISCORD, name: 'x' }], /two alert destinations are named "x"/)
  refused([{ url: `${SLACK}`, color: 'red' }], /unknown field "color"/)
  t.throws(() => loadConfig({ PUBLIC_URL: 'https://user:pw@x.example.com' }), /no credentials/)
  t.throws(() => loadConfig({ PUBLIC_URL: 'not a url' }), ConfigError)
  // Each threshold is a whole number in its range, named when it is not.
  for (const [name, tooSmall] of [['ALERT_TARGET_FAILING_AFTER_MS', '0'], ['ALERT_APPLE_SILENT_AFTER_MS', null], ['ALERT_APPLE_SILENT_SANDBOX_AFTER_MS', null], ['ALERT_CHECK_INTERVAL_MS', '5'], ['ALERT_GROUP_WINDOW_MS', '0']] as const) {
    t.throws(() => loadConfig({ [name]: '10m' }), new ConfigError(name, 'must be a whole number, got "10m"'))
    t.throws(() => loadConfig({ [name]: '-1' }), new ConfigError(name, 'must be a whole number, got "-1"'))
    if (tooSmall !== null) t.throws(() => loadConfig({ [name]: tooSmall }), { message: new RegExp(`^${name}: must be between`) })
  }
  t.throws(() => loadConfig({ ALERT_CHECK_INTERVAL_MS: '3600001' }), { message: /^ALERT_CHECK_INTERVAL_MS: must be between 10 and 3600000/ })
})

t.test('messages: short, human, linked when PUBLIC_URL is set, in each format\'s shape', async (t) => {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5)
  const c = describe('target.failing', 'crm', { failingForMs: 720_000, pending: 3, failingSince: 0 }, at, 'https://hook.example.com')
  t.equal(c.text, 'Target crm has failed every attempt for 12 min; 3 deliveries waiting. storehook keeps retrying.')
  t.equal(c.link, 'https://hook.example.com/admin')
  t.equal(c.severity, 'critical')
  t.equal(describe('deliveries.dead', 'crm', { count: 1, windowMs: 3_600_000 }, at, null).text, '1 delivery to crm given up in the last 1 h. They are kept and can be replayed.')
  t.equal(describe('apple.silent', 'Production', { silentForMs: 90_000_000 }, at, null).link, null)

  const slack = JSON.parse(String((bodyFor('slack', c) as { body: Buffer }).body))
  t.same(Object.keys(slack), ['text'])
  t.match(slack.text, /storehook target\.failing: Target crm .* <https:\/\/hook\.example\.com\/admin\|Open the dashboard>$/)
  const discord = JSON.parse(String((bodyFor('discord', c) as { body: Buffer }).body))
  t.same(discord.allowed_mentions, { parse: [] }, 'no message can ping anyone')
  t.match(discord.content, /target\.failing: Target crm/)
  const json = JSON.parse(String((bodyFor('json', c) as { body: Buffer }).body))
  t.same(json, { event: 'target.failing', severity: 'critical', text: c.text, at: '2026-01-02T03:04:05.000Z', subject: 'crm', link: 'https://hook.example.com/admin', facts: { failingForMs: 720_000, pending: 3, failingSince: 0 } })
  const mail = bodyFor('email', c)
  t.match(mail, { kind: 'email', subject: '[storehook] target.failing: crm' })

  const sneaky = describe('target.failing', '<!channel> @everyone *x*', {}, at, null)
  t.match(JSON.parse(String((bodyFor('slack', sneaky) as { body: Buffer }).body)).text, /&lt;!channel&gt;/, 'Slack control characters escaped')
  t.match(JSON.parse(String((bodyFor('discord', sneaky) as { body: Buffer }).body)).content, /\\@everyone \\\*x\\\*/, 'Discord markdown and mentions escaped')
  t.same([duration(40_000), duration(3_900_000), duration(7_200_000), duration(3 * 86_400_000)], ['40 s', '1 h 5 min', '2 h', '3 days'])
})

t.test('the sender\'s verdict: sent, retried on the backoff within alert bounds, given up after a day', async (t) => {
  const retry = { minDelayMs: 1000, maxDelayMs: 3_600_000 }
  const now = 1_000_000_000
  t.same(alertVerdict({ ok: true, error: null, retryAfterMs: null }, { attempts: 1, createdAt: now }, now, retry), { status: 'sent' })
  t.same(alertVerdict({ ok: false, error: 'HTTP 500', retryAfterMs: null }, { attempts: 1, createdAt: now }, now, retry, () => 0), { status: 'pending', nextAttemptAt: now + 1000, error: 'HTTP 500' })
  t.same(alertVerdict({ ok: false, error: 'HTTP 429', retryAfterMs: 5_000_000 }, { attempts: 1, createdAt: now }, now, retry), { status: 'pending', nextAttemptAt: now + ALERT_MAX_DELAY_MS, error: 'HTTP 429' }, 'a long Retry-After is capped')
  t.match(alertVerdict({ ok: false, error: 'HTTP 500', retryAfterMs: null }, { attempts: 30, createdAt: now - ALERT_GIVE_UP_AFTER_MS }, now, retry), { status: 'failed', error: /^gave up after 30 attempts: HTTP 500/ })
})

const health = (over: Partial<TargetHealth> = {}): TargetHealth => ({ pending: 0, dead: 0, delivered: 0, oldestPendingAt: null, lastSuccessAt: null, lastErrorAt: null, lastError: null, ...over })
const episode = (over: Partial<AlertEpisode>): AlertEpisode => ({ id: 1, event: 'target.failing', subject: 'crm', openedAt: 0, closedAt: null, facts: {}, ...over })
const T: Thresholds = { targetFailingAfterMs: 600_000, appleSilentAfterMs: 86_400_000, appleSilentSandboxAfterMs: 0, groupWindowMs: 3_600_000 }
const observed = (over: Partial<Observed>): Observed => ({ now: 10_000_000, targets: [], lastReceived: [], dead: [], quarantined: 0, storage: { writes: true, diskFree: 0.5 }, catchUps: [], tlsExpiresAt: null, ...over })

t.test('episodes: target.failing opens after the threshold of failures only, and closes with target.recovered at the first success', async (t) => {
  const now = 10_000_000
  t.equal(failingSince(health({ pending: 2, oldestPendingAt: 5, lastErrorAt: 9, lastSuccessAt: 7 })), 7, 'since the last success')
  t.equal(failingSince(health({ pending: 2, oldestPendingAt: 5, lastErrorAt: 9, lastSuccessAt: 10 })), null, 'a success after the last failure: answering')
  t.equal(failingSince(health({ pending: 0, lastErrorAt: 9 })), null, 'nothing waiting: nothing failing')
  const failing = health({ pending: 4, oldestPendingAt: now - 700_000, lastErrorAt: now - 1000, lastSuccessAt: now - 2_000_000 })
  t.same(decide(observed({ targets: [{ name: 'crm', health: failing }] }), [], T), [
    { kind: 'open', event: 'target.failing', subject: 'crm', facts: { failingSince: now - 700_000, failingForMs: 700_000, pending: 4 } }
  ])
  t.same(decide(observed({ targets: [{ name: 'crm', health: { ...failing, oldestPendingAt: now - 500_000 } }] }), [], T), [], 'not yet for long enough')
  t.same(decide(observed({ targets: [{ name: 'crm', health: failing }] }), [episode({ facts: { failingSince: now - 700_000 } })], T), [], 'open already: nothing again')
  const back = { ...failing, pending: 6, lastSuccessAt: now - 10 }
  t.same(decide(observed({ targets: [{ name: 'crm', health: back }] }), [episode({ facts: { failingSince: now - 700_000 } })], T), [
    { kind: 'close', event: 'target.failing', subject: 'crm', tell: { event: 'target.recovered', facts: { downForMs: 699_990, pending: 6 } } }
  ])
  t.same(decide(observed({ targets: [{ name: 'crm', health: failing }] }), [episode({ closedAt: now - 5 })], T).map((c) => c.kind), ['open'], 'a closed episode: a new one may open')
})

t.test('episodes: apple.silent after a first notification only; apple.resumed; 0 turns it off', async (t) => {
  const now = 200_000_000
  t.same(decide(observed({ now }), [], T), [], 'never received: not silent')
  t.same(decide(observed({ now, lastReceived: [{ environment: 'Production', at: now - 90_000_000 }] }), [], T), [
    { kind: 'open', event: 'apple.silent', subject: 'Production', facts: { lastAt: now - 90_000_000, silentForMs: 90_000_000 } }
  ])
  t.same(decide(observed({ now, lastReceived: [{ environment: 'Sandbox', at: 0 }] }), [], T), [], 'Sandbox is not watched by default')
  t.match(decide(observed({ now, lastReceived: [{ environment: 'Sandbox', at: 0 }] }), [], { ...T, appleSilentSandboxAfterMs: 1000 }), [{ kind: 'open', event: 'apple.silent', subject: 'Sandbox' }], 'unless asked')
  const open = episode({ event: 'apple.silent', subject: 'Production', facts: { lastAt: now - 90_000_000 } })
  t.same(decide(observed({ now, lastReceived: [{ environment: 'Production', at: now - 5 }] }), [open], T), [
    { kind: 'close', event: 'apple.silent', subject: 'Production', tell: { event: 'apple.resumed', facts: { silentForMs: 89_999_995 } } }
  ])
  t.same(decide(observed({ now, lastReceived: [{ environment: 'Production', at: 0 }] }), [], { ...T, appleSilentAfterMs: 0 }), [])
  t.same(decide(observed({ now }), [open], { ...T, appleSilentAfterMs: 0 }), [{ kind: 'close', event: 'apple.silent', subject: 'Production', tell: null }], 'turned off: closed without a word')
})

t.test('episodes: grouped events tell a count, once per window, then close silently', async (t) => {
  const now = 50_000_000
  t.same(decide(observed({ now, dead: [{ target: 'crm', count: 3 }], quarantined: 2 }), [], T), [
    { kind: 'open', event: 'deliveries.dead', subject: 'crm', facts: { count: 3, windowMs: 3_600_000, until: now } },
    { kind: 'open', event: 'quarantine.received', subject: 'quarantine', facts: { count: 2, windowMs: 3_600_000, until: now } }
  ])
  const open = episode({ event: 'deliveries.dead', openedAt: now - 1000, facts: { until: now - 1000 } })
  t.same(decide(observed({ now, dead: [{ target: 'crm', count: 0 }] }), [open], T), [], 'within the window: quiet')
  t.same(decide(observed({ now: now + 3_600_000, dead: [{ target: 'crm', count: 0 }] }), [open], T), [{ kind: 'close', event: 'deliveries.dead', subject: 'crm', tell: null }])
  const closed = { ...open, closedAt: now }
  t.same(decide(observed({ now: now + 4_000_000, dead: [{ target: 'crm', count: 5 }] }), [closed], T), [
    { kind: 'open', event: 'deliveries.dead', subject: 'crm', facts: { count: 5, windowMs: 4_001_000, until: now + 4_000_000 } }
  ], 'counted from where the last one stopped')
})

t.test('episodes: storage.failing when the disk is under 10% free or writes fail, storage.recovered after', async (t) => {
  t.same(decide(observed({ storage: { writes: true, diskFree: 0.05 } }), [], T), [{ kind: 'open', event: 'storage.failing', subject: 'disk', facts: { freePercent: 5 } }])
  t.same(decide(observed({ storage: { writes: true, diskFree: null } }), [], T), [], 'unknown (PostgreSQL): nothing')
  const open = episode({ event: 'storage.failing', subject: 'disk' })
  t.same(decide(observed({ storage: { writes: true, diskFree: 0.3 } }), [open], T), [{ kind: 'close', event: 'storage.failing', subject: 'disk', tell: { event: 'storage.recovered', facts: { freePercent: 30 } } }])
  t.same(decide(observed({ storage: { writes: false, diskFree: 0.3 } }), [], T), [{ kind: 'open', event: 'storage.failing', subject: 'writes', facts: {} }])
  t.match(describe('storage.failing', 'disk', { freePercent: 5 }, 0, null).text, /nearly full: 5% free/)
})

t.test('episodes: catchup.found counts what finished runs added; appstore.rejected while the last run says 401; tls.expiring within 14 days', async (t) => {
  const now = 100_000_000
  const run = (over: Partial<Observed['catchUps'][number]>) => ({ bundleId: 'com.example', environment: 'Production', finishedAt: now - 10, added: 0, lastError: null, ...over })
  t.same(decide(observed({ now, catchUps: [run({ added: 3 }), run({ environment: 'Sandbox' })] }), [], T), [
    { kind: 'open', event: 'catchup.found', subject: 'Production', facts: { count: 3, windowMs: 3_600_000, until: now } }
  ])
  t.same(decide(observed({ now, catchUps: [run({ added: 3, finishedAt: now - 4_000_000 })] }), [], T), [], 'a run older than the window was told or is stale')
  const refused = run({ finishedAt: null, lastError: 'App Store Server API Production answered 401 Unauthorized: the key...' })
  t.same(decide(observed({ now, catchUps: [refused] }), [], T), [{ kind: 'open', event: 'appstore.rejected', subject: 'com.example Production', facts: {} }])
  t.same(decide(observed({ now, catchUps: [run({ finishedAt: null, lastError: 'App Store Server API answered 500' })] }), [], T), [], 'a server error is not a refused key')
  const open = episode({ event: 'appstore.rejected', subject: 'com.example Production' })
  t.same(decide(observed({ now, catchUps: [run({})] }), [open], T), [{ kind: 'close', event: 'appstore.rejected', subject: 'com.example Production', tell: null }])
  t.same(decide(observed({ now, tlsExpiresAt: now + 3 * 86_400_000 }), [], T), [{ kind: 'open', event: 'tls.expiring', subject: 'certificate', facts: { expiresAt: now + 3 * 86_400_000, expiresInMs: 3 * 86_400_000 } }])
  t.same(decide(observed({ now, tlsExpiresAt: now + 30 * 86_400_000 }), [], T), [])
  t.same(decide(observed({ now, tlsExpiresAt: now + 90 * 86_400_000 }), [episode({ event: 'tls.expiring', subject: 'certificate' })], T), [{ kind: 'close', event: 'tls.expiring', subject: 'certificate', tell: null }], 'renewed')
})
