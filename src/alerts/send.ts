// One alert to one destination, and what came of it. HTTP destinations
// (Slack, Discord, JSON) go out through the delivery client itself
// (src/delivery/deliver.ts): the same timeouts, no redirects, Retry-After
// read, errors that name a host at most, and for a destination with a
// signingSecret the same Standard Webhooks headers a target gets (the
// webhook-id is the alert's own id, stable across retries). Email goes
// through nodemailer. Never throws.
import nodemailer from 'nodemailer'
import type { AlertDestination, TargetConfig } from '../config.ts'
import { abortInflight, createClient, deliver } from '../delivery/deliver.ts'
import { bodyFor, type AlertContent } from './messages.ts'

export const ALERT_TIMEOUT_MS = 10_000

export interface SendOutcome {
  ok: boolean
  // Short, and never the destination's URL (its token) or credentials.
  error: string | null
  retryAfterMs: number | null
}

export interface AlertChannel {
  destination: AlertDestination
  send: (content: AlertContent, id: string, attempt: number) => Promise<SendOutcome>
  close: () => void
}

// A destination as the delivery client sees a target: no filters, one
// request at a time is plenty for alerts.
function asTarget (d: AlertDestination, timeoutMs: number): TargetConfig {
  return {
    name: d.name,
    url: d.url,
    headers: d.headers,
    timeoutMs,
    concurrency: 2,
    filters: { environments: null, notificationTypes: null, bundleIds: null },
    signingSecret: d.signingSecret,
    // The alert body is sent as it is built; the decoded document is for notifications.
    payload: 'apple'
  }
}

function httpChannel (d: AlertDestination, timeoutMs: number): AlertChannel {
  const client = createClient(asTarget(d, timeoutMs))
  return {
    destination: d,
    async send (content, id, attempt) {
      const body = bodyFor(d.format, content)
      if (body.kind !== 'http') return { ok: false, error: 'not an HTTP destination', retryAfterMs: null }
      const r = await deliver(client, { notificationId: id, attempt, body: body.body })
      return { ok: r.ok, error: r.error, retryAfterMs: r.retryAfterMs }
    },
    close () {
      abortInflight(client)
      void client.agent.close()
    }
  }
}

// nodemailer's errors carry an SMTP code and the server's answer; the
// connection URL (with its password) is never part of them, but the
// message is cut and stripped of anything that looks like one all the same.
function mailError (err: unknown): string {
  const e = err as { code?: string; responseCode?: number; message?: string }
  const text = String(e.message ?? err).replace(/smtps?:\/\/\S+/gi, '<smtp url>').slice(0, 200)
  return [e.code, e.responseCode, text].filter((x) => x !== undefined).join(': ')
}

function emailChannel (d: AlertDestination, timeoutMs: number): AlertChannel {
  const transport = nodemailer.createTransport({ url: d.url, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs })
  return {
    destination: d,
    async send (content) {
      const body = bodyFor('email', content)
      if (body.kind !== 'email' || d.email === null) return { ok: false, error: 'not an email destination', retryAfterMs: null }
      try {
        await transport.sendMail({ from: d.email.from, to: d.email.to, subject: body.subject, text: body.text })
        return { ok: true, error: null, retryAfterMs: null }
      } catch (err) {
        return { ok: false, error: mailError(err), retryAfterMs: null }
      }
    },
    close () { transport.close() }
  }
}

export function openChannel (d: AlertDestination, timeoutMs = ALERT_TIMEOUT_MS): AlertChannel {
  return d.format === 'email' ? emailChannel(d, timeoutMs) : httpChannel(d, timeoutMs)
}
