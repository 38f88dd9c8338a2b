// Alert destinations with real parts (issue 17): local HTTP receivers that
// check the Slack, Discord and JSON shapes and the Standard Webhooks
// signature, a local SMTP server (smtp-server), `storehook alert-test` run as
// the operator runs it, durable sending with retries, and a destination that
// is down holding back none of the others.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { sendTestAlerts } from '../../src/alerts/sender.ts'
import { ALERT_EVENTS } from '../../src/db/vocabulary.ts'
import { configFile, startApp, until } from '../helpers/app.ts'
import { runCli } from '../helpers/process.ts'
import { startTarget, type Received, type Target } from '../helpers/target.ts'

const SECRET = 'whsec_' + Buffer.from('alert signing secret for the test').toString('base64')

interface Mail { from: string; to: string[]; data: string }

// A real SMTP server on 127.0.0.1 that keeps what it is sent.
async function startSmtp (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ port: number; mails: Mail[] }> {
  const mails: Mail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData (stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8')
        })
        callback()
      })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.server.address() as AddressInfo).port, mails }
}

const json = (r: Received): any => JSON.parse(r.body.toString('utf8'))

async function receivers (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ slack: Target; discord: Target; hook: Target }> {
  const slack = await startTarget(undefined, '/services/T000/B000/SECRETslack')
  const discord = await startTarget((_r, _n, res) => { res.writeHead(204).end() }, '/api/webhooks/1/SECRETdiscord')
  const hook = await startTarget(undefined, '/alerts?token=SECRETjson')
  for (const r of [slack, discord, hook]) t.teardown(r.close)
  return { slack, discord, hook }
}

// One destination of each format, in a config file: its path and the receivers.
async function everyFormat (t: Parameters<typeof configFile>[0] & { teardown: (fn: () => Promise<void>) => void }) {
  const { slack, discord, hook } = await receivers(t)
  const smtp = await startSmtp(t)
  const path = configFile(t, {
    alerts: [
      { name: 'team-slack', url: slack.url, format: 'slack' },
      { name: 'team-discord', url: discord.url, format: 'discord' },
      { name: 'pager', url: hook.url, signingSecret: SECRET, headers: { 'x-team': 'ops' } },
      { name: 'mail', url: `smtp://127.0.0.1:${smtp.port}`, from: 'storehook@example.com', to: ['ops@example.com', 'cto@example.com'] }
    ]
  })
  return { slack, discord, hook, smtp, path }
}

t.test('the test alert reaches every format: Slack, Discord, signed JSON and email, sent at once and from `storehook alert-test`', async (t) => {
  const { slack, discord, hook, smtp, path } = await everyFormat(t)
  const env = { STOREHOOK_CONFIG: path, PUBLIC_URL: 'https://hook.example.com' }
  const s = await startApp(t, env)
  const outcomes = await sendTestAlerts(s.config)
  t.same(outcomes.map((o) => [o.destination, o.format, o.ok]), [['team-slack', 'slack', true], ['team-discord', 'discord', true], ['pager', 'json', true], ['mail', 'email', true]])

  const [sl] = await slack.waitFor(1)
  t.same(Object.keys(json(sl!)), ['text'], 'Slack: an incoming webhook\'s {text}')
  t.match(json(sl!).text, /^🟢 storehook test: A test alert from storehook.* <https:\/\/hook\.example\.com\/admin\/alerts\|Open the dashboard>$/)
  const [di] = await discord.waitFor(1)
  t.match(json(di!), { content: /storehook test: A test alert.*https:\/\/hook\.example\.com\/admin\/alerts$/, allowed_mentions: { parse: [] } }, 'Discord: {content}, mentions off')
  const [js] = await hook.waitFor(1)
  t.match(json(js!), { event: 'test', severity: 'info', text: /test alert/, at: /^\d{4}-\d\d-\d\dT/, subject: 'storehook', link: 'https://hook.example.com/admin/alerts', facts: {} })
  t.equal(js!.headers['x-team'], 'ops', 'the destination\'s own headers')
  t.doesNotThrow(() => new Webhook(SECRET).verify(js!.body.toString('utf8'), js!.headers as Record<string, string>), 'the Standard Webhooks signature verifies with the reference package')
  t.throws(() => new Webhook('whsec_' + Buffer.from('another').toString('base64')).verify(js!.body.toString('utf8'), js!.headers as Record<string, string>))
  t.equal(sl!.headers['webhook-signature'], undefined, 'only a destination with a secret is signed')
  await until(() => smtp.mails.length === 1, 10_000, 'the email')
  t.same([smtp.mails[0]!.from, smtp.mails[0]!.to], ['storehook@example.com', ['ops@example.com', 'cto@example.com']])
  t.match(smtp.mails[0]!.data, /Subject: \[storehook\] test: storehook/)
  t.match(smtp.mails[0]!.data, /A test alert from storehook/)

  // The command line: each destination's outcome, named, never its URL.
  const cli = await runCli(['alert-test'], { ...env, ...s.env, PATH: process.env.PATH ?? '' })
  t.equal(cli.code, 0, cli.stderr)
  t.equal(cli.stdout, 'Test alert:\n  team-slack (slack): sent\n  team-discord (discord): sent\n  pager (json): sent\n  mail (email): sent\n')
  await hook.waitFor(2)
  await until(() => smtp.mails.length === 2, 10_000, 'the second email')

  // One destination refusing: named with why, exit code 1, the others still sent.
  hook.respond((_r, _n, res) => { res.writeHead(403).end('nope') })
  const refused = await runCli(['alert-test'], { ...env, ...s.env, PATH: process.env.PATH ?? '' })
  t.equal(refused.code, 1)
  t.match(refused.stdout, /pager \(json\): refused: HTTP 403\n/)
  t.match(refused.stdout, /team-slack \(slack\): sent/)
  t.match(refused.stderr, /1 of 4 alert destination\(s\) refused the test alert/)
  t.notMatch(refused.stdout + refused.stderr, /SECRET/, 'no URL token printed')
  const none = await runCli(['alert-test'], { ...s.env, PATH: process.env.PATH ?? '' })
  t.equal(none.code, 1)
  t.match(none.stderr, /no alert destination: set ALERT_URLS/)
})

t.test('queued alerts are retried with backoff until accepted, and a destination that is down holds back none of the others', async (t) => {
  const flaky = await startTarget((_r, n, res) => { res.writeHead(n < 3 ? 500 : 200).end() }, '/flaky')
  t.teardown(flaky.close)
  // Accepts the connection and never answers: each attempt waits out its timeout.
  const hanging = await startTarget(() => {}, '/hang')
  t.teardown(hanging.close)
  const fine = await startTarget(undefined, '/fine')
  t.teardown(fine.close)
  // Nothing listens there.
  const down = 'http://127.0.0.1:9/down'
  const s = await startApp(t, { ALERT_URLS: [flaky.url, hanging.url, down, fine.url].join(','), ALERT_CHECK_INTERVAL_MS: '50' })
  const names = s.config.alerts.destinations.map((d) => d.name)
  await s.app.outbox.queueAlert({ event: 'test', subject: 'storehook', facts: {}, destinations: names }, Date.now())
  s.app.alerts.sender.wake()
  await fine.waitFor(1)
  t.equal(fine.received.length, 1, 'the working destination got its alert while another hangs and another is down')
  await flaky.waitFor(3, 10_000)
  const history = async () => await s.app.outbox.alertHistory(10)
  await until(async () => (await history()).find((m) => m.destination === names[0])?.status === 'sent', 10_000, 'the flaky destination to accept')
  const rows = await history()
  t.match(rows.find((m) => m.destination === names[0]), { status: 'sent', attempts: 3 }, 'accepted on the third attempt')
  t.match(rows.find((m) => m.destination === names[2]), { status: 'pending', lastError: /ECONNREFUSED/ }, 'the down one waits for its next attempt')
  t.ok(rows.every((m) => !String(m.lastError).includes('/down')), 'no error names a path')
  const metrics = await (await fetch(`${s.url}/metrics`)).text()
  t.match(metrics, /storehook_alerts_total\{event="test",result="sent"\} 2/)
  t.match(metrics, /storehook_alerts_total\{event="test",result="retry"\} [1-9]/)
})

t.test('every alert event reaches every format through the durable sender: Slack, Discord, signed JSON and email', async (t) => {
  const { slack, discord, hook, smtp, path } = await everyFormat(t)
  const s = await startApp(t, { STOREHOOK_CONFIG: path, ALERT_CHECK_INTERVAL_MS: '3600000' })
  const names = s.config.alerts.destinations.map((d) => d.name)
  for (const event of ALERT_EVENTS) await s.app.outbox.queueAlert({ event, subject: 'crm', facts: { count: 2, pending: 3, failingForMs: 700_000 }, destinations: names }, Date.now())
  s.app.alerts.sender.wake()
  const n = ALERT_EVENTS.length
  await Promise.all([slack.waitFor(n), discord.waitFor(n), hook.waitFor(n), until(() => smtp.mails.length === n, 15_000, 'every email')])
  const sorted = [...ALERT_EVENTS].sort()
  t.same(slack.received.map((r) => /storehook (\S+):/.exec(json(r).text)![1]).sort(), sorted, 'Slack: every event as {text}')
  t.ok(slack.received.every((r) => Object.keys(json(r)).join() === 'text'))
  t.same(discord.received.map((r) => /storehook (\S+):/.exec(json(r).content)![1]).sort(), sorted, 'Discord: every event as {content}')
  t.ok(discord.received.every((r) => json(r).allowed_mentions.parse.length === 0))
  t.same(hook.received.map((r) => json(r).event).sort(), sorted, 'JSON: every event')
  for (const r of hook.received) {
    t.match(json(r), { severity: /^(critical|warning|info)$/, text: /\S/, at: /Z$/, subject: 'crm' })
    new Webhook(SECRET).verify(r.body.toString('utf8'), r.headers as Record<string, string>)
  }
  t.same(smtp.mails.map((m) => /Subject: \[storehook\] (\S+):/.exec(m.data)![1]).sort(), sorted, 'email: every event')
  t.ok((await s.app.outbox.alertHistory(100)).every((m) => m.status === 'sent'), 'every message recorded as sent')
})
