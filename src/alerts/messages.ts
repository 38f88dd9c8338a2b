// What an alert says, and the body each destination format wants: pure
// functions of the event, its subject and facts. Short and human, with a
// link to the dashboard page in question when PUBLIC_URL is set. A message
// names targets by their configured names and never holds a URL of theirs,
// a token or a secret: facts are only names and numbers, chosen by the
// monitor (monitor.ts), never text a sender chose.
import type { AlertDestination } from '../config.ts'
import type { AlertEvent } from '../db/vocabulary.ts'
import type { AlertFacts } from '../outbox/engine.ts'

export type Severity = 'critical' | 'warning' | 'info'

export const SEVERITY: Record<AlertEvent, Severity> = {
  'target.failing': 'critical',
  'target.recovered': 'info',
  'deliveries.dead': 'warning',
  'apple.silent': 'critical',
  'apple.resumed': 'info',
  'quarantine.received': 'warning',
  'catchup.found': 'warning',
  'storage.failing': 'critical',
  'storage.recovered': 'info',
  'tls.expiring': 'warning',
  'appstore.rejected': 'critical',
  test: 'info'
}

// The dashboard page each event is about.
const PAGE: Record<AlertEvent, string> = {
  'target.failing': '/admin',
  'target.recovered': '/admin',
  'deliveries.dead': '/admin/dead',
  'apple.silent': '/admin/apple',
  'apple.resumed': '/admin/apple',
  'quarantine.received': '/admin/quarantine',
  'catchup.found': '/admin/apple',
  'storage.failing': '/admin',
  'storage.recovered': '/admin',
  'tls.expiring': '/admin',
  'appstore.rejected': '/admin/apple',
  test: '/admin/alerts'
}

export interface AlertContent {
  event: AlertEvent
  severity: Severity
  subject: string
  // One or two sentences, plain text.
  text: string
  link: string | null
  at: number
  facts: AlertFacts
}

// "3 h 5 min", "12 min", "40 s": how long, for a person.
export function duration (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  if (h < 48) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`
  return `${Math.floor(h / 24)} days`
}

const num = (facts: AlertFacts, key: string): number => typeof facts[key] === 'number' ? facts[key] : 0
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

function sentence (event: AlertEvent, subject: string, f: AlertFacts): string {
  switch (event) {
    case 'target.failing':
      return `Target ${subject} has failed every attempt for ${duration(num(f, 'failingForMs'))}; ${plural(num(f, 'pending'), 'delivery', 'deliveries')} waiting. storehook keeps retrying.`
    case 'target.recovered':
      return `Target ${subject} answers again after ${duration(num(f, 'downForMs'))} down; ${plural(num(f, 'pending'), 'delivery', 'deliveries')} were waiting and are going out now.`
    case 'deliveries.dead':
      return `${plural(num(f, 'count'), 'delivery', 'deliveries')} to ${subject} given up in the last ${duration(num(f, 'windowMs'))}. They are kept and can be replayed.`
    case 'apple.silent':
      return `No notification from Apple (${subject}) for ${duration(num(f, 'silentForMs'))}. Check the URL in App Store Connect and that it still reaches storehook.`
    case 'apple.resumed':
      return `Apple (${subject}) sends notifications again, after ${duration(num(f, 'silentForMs'))} of silence.`
    case 'quarantine.received':
      return `${plural(num(f, 'count'), 'refused payload')} quarantined in the last ${duration(num(f, 'windowMs'))}. A wrong APPLE_BUNDLE_IDS or root certificate shows up here first.`
    case 'catchup.found':
      return `The catch-up found ${plural(num(f, 'count'), 'notification')} Apple could not deliver (${subject}), and forwarded them. Check that App Store Connect's URL reaches storehook.`
    case 'storage.failing':
      return subject === 'disk'
        ? `The database's disk is nearly full: ${num(f, 'freePercent')}% free. When it is full, notifications are answered 503.`
        : 'Writes to the database are failing: notifications are answered 503 (Apple retries them for up to three days).'
    case 'storage.recovered':
      return subject === 'disk' ? `The database's disk has room again: ${num(f, 'freePercent')}% free.` : 'The database takes writes again.'
    case 'tls.expiring':
      return `The TLS certificate storehook serves expires in ${duration(num(f, 'expiresInMs'))}: Apple will refuse to post to it. Replace the file at TLS_CERT_PATH (it is reloaded by itself).`
    case 'appstore.rejected':
      return `The App Store Server API refused the configured key (${subject}): check APPLE_ISSUER_ID, APPLE_KEY_ID and the key file. Catch-up and backfill cannot run until then.`
    case 'test':
      return 'A test alert from storehook: this destination is wired up.'
  }
}

export function describe (event: AlertEvent, subject: string, facts: AlertFacts, at: number, publicUrl: string | null): AlertContent {
  return {
    event,
    severity: SEVERITY[event],
    subject,
    text: sentence(event, subject, facts),
    link: publicUrl === null ? null : `${publicUrl}${PAGE[event]}`,
    at,
    facts
  }
}

const ICON: Record<Severity, string> = { critical: '🔴', warning: '🟠', info: '🟢' }

// Slack's mrkdwn treats &, < and > as control characters (its docs say to
// escape exactly these three).
const slackEscape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

// Discord renders markdown and mentions: no @everyone or role ping may come
// from a message (allowed_mentions below too), and markdown marks are shown as typed.
const discordEscape = (text: string): string => text.replace(/([\\*_~`|>@])/g, '\\$1')

export interface HttpBody {
  kind: 'http'
  body: Buffer
}

export interface EmailBody {
  kind: 'email'
  subject: string
  text: string
}

export function bodyFor (format: AlertDestination['format'], c: AlertContent): HttpBody | EmailBody {
  const head = `${ICON[c.severity]} storehook ${c.event}`
  switch (format) {
    case 'slack':
      return { kind: 'http', body: Buffer.from(JSON.stringify({ text: `${head}: ${slackEscape(c.text)}${c.link === null ? '' : ` <${c.link}|Open the dashboard>`}` })) }
    case 'discord':
      return {
        kind: 'http',
        body: Buffer.from(JSON.stringify({
          content: `${head}: ${discordEscape(c.text)}${c.link === null ? '' : ` ${c.link}`}`,
          allowed_mentions: { parse: [] }
        }))
      }
    case 'json':
      return {
        kind: 'http',
        body: Buffer.from(JSON.stringify({
          event: c.event, severity: c.severity, text: c.text, at: new Date(c.at).toISOString(), subject: c.subject, link: c.link, facts: c.facts
        }))
      }
    case 'email':
      return {
        kind: 'email',
        subject: `[storehook] ${c.event}: ${c.subject}`,
        text: `${c.text}\n${c.link === null ? '' : `\n${c.link}\n`}\n${new Date(c.at).toISOString()}, severity ${c.severity}.\n`
      }
  }
}
