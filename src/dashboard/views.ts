// The dashboard's pages: pure functions from data to HTML, so every page can
// be read (and its escaping checked) without a server.
import type { CatchUpState } from '../appstore/operator.ts'
import type { AlertEpisode, AlertMessage, AttemptRow, DeliveryRow, NotificationRow, NotificationSummary, Overview, QuarantineRow, TargetHealth } from '../outbox/engine.ts'
import type { FilterForm } from '../ops/notifications.ts'
import type { NotificationDetail } from '../ops/notification-detail.ts'
import { DELIVERY_STATUSES, ENVIRONMENTS, VERIFICATION_STATUSES } from '../db/vocabulary.ts'
import { ago, html, utc, type Html } from './html.ts'
import { describe } from '../alerts/messages.ts'
import type { AlertDestination } from '../config.ts'
import { KEPT_TEST_RUNS, type TestRun } from './test-runs.ts'

export interface PageContext {
  csrf: string | null
  now: number
  deadCount: number
  quarantineCount: number
  // Configuration that weakens a promise (e.g. unauthenticated V1 accepted
  // under enforce): a banner on every page behind the login.
  warnings: readonly string[]
}

type Listed = NotificationSummary & { deliveries: DeliveryRow[] }

type Section = 'overview' | 'notifications' | 'dead' | 'quarantine' | 'apple' | 'alerts' | 'login'

function layout (ctx: PageContext, section: Section, title: string, body: Html, options: { refreshSeconds?: number } = {}): Html {
  const link = (href: string, name: Section, label: string, count?: number): Html =>
    html`<a href="${href}" class="${section === name ? 'on' : ''}">${label}${count !== undefined && count > 0 ? html` <span class="pill bad">${count}</span>` : ''}</a>`
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · storehook</title>
<link rel="stylesheet" href="/admin/assets/dashboard.css"><script src="/admin/assets/dashboard.js" defer></script></head>
<body${options.refreshSeconds !== undefined ? html` data-refresh="${options.refreshSeconds}"` : ''}>
<header><a class="brand" href="/admin">storehook</a>${ctx.csrf !== null
    ? html`<nav>${link('/admin', 'overview', 'Overview')}${link('/admin/notifications', 'notifications', 'Notifications')}${link('/admin/dead', 'dead', 'Dead letters', ctx.deadCount)}${link('/admin/quarantine', 'quarantine', 'Quarantine', ctx.quarantineCount)}${link('/admin/apple', 'apple', 'Apple')}${link('/admin/alerts', 'alerts', 'Alerts')}</nav>
<form method="post" action="/admin/logout">${csrfField(ctx)}<button type="submit">Log out</button></form>`
    : ''}</header>
${ctx.csrf !== null ? ctx.warnings.map((w) => html`<p class="banner" role="alert">${w}</p>`) : ''}
<main>${body}</main>
</body></html>`
}

function csrfField (ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf ?? ''}">`
}

const statusPill = (status: string): Html => html`<span class="pill ${status}">${status}</span>`

function notificationHref (id: string): string {
  return `/admin/notifications/${encodeURIComponent(id)}`
}

function flash (message: string | null): Html {
  return message === null ? html`` : html`<p class="flash" role="status">${message}</p>`
}

export function loginPage (ctx: PageContext, error: string | null): Html {
  return layout(ctx, 'login', 'Log in', html`<form class="login card" method="post" action="/admin/login">
<h1>Log in</h1>
<p class="muted">Enter the <code>ADMIN_TOKEN</code> this server was started with.</p>
${error !== null ? html`<p class="error" role="alert">${error}</p>` : ''}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button class="primary" type="submit">Log in</button>
</form>`)
}

export function errorPage (ctx: PageContext, status: number, code: string, message: string): Html {
  return layout(ctx, 'overview', `Error ${status}`, html`<h1>${status} ${code}</h1><p class="error">${message}</p><p><a href="/admin">Back to the overview</a></p>`)
}

export interface TargetView extends TargetHealth {
  name: string
  host: string
}

// The catch-up at a glance: is it on, and did each app and environment's
// last run find anything or fail. The figures are on the Apple page.
function catchUpCard (ctx: PageContext, c: CatchUpState): Html {
  return html`<section class="card catch-up"><h2>Catch-up from Apple ${catchUpPills(c)}</h2>
${!c.enabled
    ? html`<p class="muted">Off: the App Store Server API keys are not set, so notifications Apple failed to deliver are not asked for again.</p>`
    : c.runs.length === 0
      ? html`<p class="muted">No catch-up has run yet.</p>`
      : html`<ul class="runs">${c.runs.map((r) => html`<li>${r.environment} · ${r.bundleId}: ${r.lastError !== null
        ? html`<span class="error">failed ${ago(r.started, ctx.now)}: ${r.lastError}</span>`
        : r.finished === null
          ? html`<span class="pill pending">not finished</span> started ${ago(r.started, ctx.now)}`
          : html`${r.new > 0 ? html`<span class="pill ok">${r.new} new</span>` : '0 new'} of ${r.seen} seen${r.refused > 0 ? html`, <span class="pill bad">${r.refused} refused</span>` : ''}, ${ago(r.finished, ctx.now)}`}</li>`)}</ul>`}
<p class="small"><a href="/admin/apple">Last runs and the test notification →</a></p>
</section>`
}

function catchUpPills (c: CatchUpState): Html {
  return html`${c.enabled ? html`<span class="pill ok">on</span>` : html`<span class="pill bad">off</span>`}${c.running ? html` <span class="pill pending">running now</span>` : ''}`
}

export function overviewPage (ctx: PageContext, data: { overview: Overview; hourly: Array<{ hour: number; n: number }>; targets: TargetView[]; latest: Listed[]; catchUp: CatchUpState }): Html {
  const max = Math.max(1, ...data.hourly.map((h) => h.n))
  const total = data.hourly.reduce((n, h) => n + h.n, 0)
  return layout(ctx, 'overview', 'Overview', html`<h1>Overview</h1>
<div class="grid">
<section class="card"><h2>Last notification received</h2>
${data.overview.lastReceived.length === 0
    ? html`<p class="muted">Nothing received yet.</p>`
    : html`<table><tr><th>Environment</th><th>Received (UTC)</th><th>Type</th></tr>
${data.overview.lastReceived.map((r) => html`<tr><td>${r.environment ?? '(none)'}</td><td><span class="mono">${utc(r.at)}</span> <span class="muted small">${ago(r.at, ctx.now)}</span></td><td>${r.type}</td></tr>`)}</table>`}
</section>
<section class="card"><h2>Last 24 hours: ${total} received</h2>
<div class="chart" role="img" aria-label="Notifications per hour over the last 24 hours">${data.hourly.map((h) => html`<div class="col" title="${utc(h.hour)}: ${h.n}"><span class="n">${h.n > 0 ? h.n : ''}</span><div class="bar b${Math.round((h.n / max) * 20)}"></div></div>`)}</div>
<div class="axis">${data.hourly.map((h, i) => html`<span>${i % 3 === 0 ? new Date(h.hour).toISOString().slice(11, 13) : ''}</span>`)}</div>
<p class="small muted">Per hour, UTC. ${data.overview.last24h.map((r) => html`<span class="pill ${r.verification}">${r.environment ?? '(none)'} · ${r.verification}: ${r.n}</span>`)}</p>
</section>
${catchUpCard(ctx, data.catchUp)}
</div>
<h2>Targets</h2>
<table><tr><th>Target</th><th>Pending</th><th>Oldest pending</th><th>Dead</th><th>Delivered</th><th>Success rate</th><th>Last success</th><th>Last error</th></tr>
${data.targets.map((t) => {
    const settled = t.delivered + t.dead
    return html`<tr><td><strong>${t.name}</strong><br><span class="muted small">${t.host}</span></td>
<td>${t.pending > 0 ? html`<a href="/admin/notifications?deliveryStatus=pending&amp;target=${encodeURIComponent(t.name)}">${t.pending}</a>` : '0'}</td>
<td>${t.oldestPendingAt === null ? '-' : ago(t.oldestPendingAt, ctx.now)}</td>
<td>${t.dead > 0 ? html`<a class="pill dead" href="/admin/dead#${t.name}">${t.dead}</a>` : '0'}</td>
<td>${t.delivered}</td>
<td>${settled === 0 ? '-' : `${((t.delivered / settled) * 100).toFixed(1)} %`}</td>
<td><span class="mono small">${utc(t.lastSuccessAt)}</span></td>
<td>${t.lastError !== null ? html`<span class="error">${t.lastError}</span><br><span class="muted small">${utc(t.lastErrorAt)}</span>` : '-'}</td></tr>`
  })}
</table>
<h2>Latest notifications</h2>
${data.latest.length === 0 ? html`<p class="muted">None yet.</p>` : notificationRows(data.latest)}
<p class="pager"><a href="/admin/notifications">Search all notifications →</a></p>`)
}

function select (name: string, label: string, value: string | undefined, options: readonly string[]): Html {
  return html`<label>${label}<select name="${name}"><option value="">any</option>${options.map((o) => html`<option${o === value ? html` selected` : ''}>${o}</option>`)}</select></label>`
}

function input (name: string, label: string, value: string | undefined, placeholder = ''): Html {
  return html`<label>${label}<input name="${name}" value="${value ?? ''}" placeholder="${placeholder}"></label>`
}

function notificationRows (items: Listed[], showErrorFor?: string): Html {
  return html`<table><tr><th>Received (UTC)</th><th>Type</th><th>Environment</th><th>Bundle ID</th><th>Original transaction</th><th>Verification</th><th>Deliveries</th></tr>
${items.map((n) => html`<tr class="row"><td><a class="mono" href="${notificationHref(n.id)}">${utc(n.receivedAt)}</a></td>
<td><a href="${notificationHref(n.id)}">${n.notificationType}</a>${n.subtype !== null ? html`<br><span class="muted small">${n.subtype}</span>` : ''}</td>
<td>${n.environment ?? '-'}</td><td>${n.bundleId ?? '-'}</td><td class="mono">${n.originalTransactionId ?? '-'}</td>
<td>${statusPill(n.verification)}</td>
<td>${n.deliveries.map((d) => html`<span class="pill ${d.status}" title="${d.lastError ?? ''}">${d.target}: ${d.status}</span>`)}${showErrorFor !== undefined
    ? n.deliveries.filter((d) => d.target === showErrorFor && d.lastError !== null).map((d) => html`<br><span class="error small">${d.lastError}</span>`)
    : ''}</td></tr>`)}
</table>`
}

export function listPage (ctx: PageContext, data: { form: FilterForm; items: Listed[]; nextHref: string | null; targets: string[] }): Html {
  const f = data.form
  return layout(ctx, 'notifications', 'Notifications', html`<h1>Notifications</h1>
<form class="filters" method="get" action="/admin/notifications">
${input('type', 'Type', f.type, 'DID_RENEW')}${input('subtype', 'Subtype', f.subtype)}
${select('environment', 'Environment', f.environment, ENVIRONMENTS)}
${input('bundleId', 'Bundle ID', f.bundleId)}${input('originalTransactionId', 'Original transaction ID', f.originalTransactionId)}
${select('verification', 'Verification', f.verification, VERIFICATION_STATUSES)}
${select('deliveryStatus', 'Delivery', f.deliveryStatus, DELIVERY_STATUSES)}
${select('target', 'Target', f.target, data.targets)}
${input('since', 'Since (UTC)', f.since, '2026-01-31T00:00Z or 48h')}${input('until', 'Until (UTC)', f.until)}
<button class="primary" type="submit">Search</button> <a href="/admin/notifications">Clear</a>
</form>
${data.items.length === 0 ? html`<p class="muted">No notification matches.</p>` : notificationRows(data.items)}
${data.nextHref !== null ? html`<p class="pager"><a href="${data.nextHref}">Older →</a></p>` : ''}`)
}

function replayForm (ctx: PageContext, id: string, target: string | null, label: string, primary = false): Html {
  return html`<form class="inline" method="post" action="${notificationHref(id)}/replay">${csrfField(ctx)}${target !== null ? html`<input type="hidden" name="target" value="${target}">` : ''}<button type="submit" class="${primary ? 'primary' : ''}">${label}</button></form>`
}

// How the detail page names a stored field. A field without a name here (one
// added to the table since) is shown all the same, under its own key.
const FIELD_LABELS: Partial<Record<keyof NotificationSummary, string>> = {
  id: 'Storehook ID',
  receivedAt: 'Received',
  source: 'Source',
  version: 'Version',
  notificationUuid: 'Notification UUID',
  notificationType: 'Type',
  subtype: 'Subtype',
  environment: 'Environment',
  bundleId: 'Bundle ID',
  appAppleId: 'App Apple ID',
  signedDate: 'Signed',
  originalTransactionId: 'Original transaction ID',
  transactionId: 'Transaction ID',
  productId: 'Product ID',
  appAccountToken: 'App account token',
  verification: 'Verification',
  verificationError: 'Verification error'
}

// Fields that hold a time, shown as a UTC date.
const TIME_FIELDS: ReadonlySet<string> = new Set<keyof NotificationSummary>(['receivedAt', 'signedDate'])

// The decoded fields in the table's order (the summary is every column but
// the body and the dedupe key), as label and shown value; null ones are left out.
export function detailFields (n: NotificationSummary): Array<[string, unknown]> {
  return Object.entries(n)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => [FIELD_LABELS[k as keyof NotificationSummary] ?? k, TIME_FIELDS.has(k) ? utc(v as number) : v])
}

// What a decoded target was sent: the same document on every attempt, as
// its exact text (pretty-printing would go through JSON.parse, which loses
// the digits of a number past 2^53).
function decodedSent (decoded: NotificationDetail['decoded']): Html {
  if (decoded === undefined) return html``
  return decoded.text === null
    ? html`<p class="small error">${decoded.error}</p>`
    : html`<details class="decoded"><summary class="small">Body sent on every attempt: storehook's decoded document (${Buffer.byteLength(decoded.text)} bytes, signed)</summary><pre class="wrap">${decoded.text}</pre></details>`
}

export function notificationPage (ctx: PageContext, data: { notification: NotificationSummary; payload: unknown; payloadError: string | null; body: string | null; deliveries: Array<DeliveryRow & { history: AttemptRow[] }>; targets: string[]; flash: string | null; decodedTargets?: readonly string[]; decoded?: NotificationDetail['decoded'] }): Html {
  const n = data.notification
  const fields = detailFields(n)
  const missing = data.targets.filter((t) => !data.deliveries.some((d) => d.target === t))
  const pending = data.deliveries.some((d) => d.status === 'pending')
  return layout(ctx, 'notifications', `${n.notificationType} ${n.id}`, html`<h1>${n.notificationType}${n.subtype !== null ? html` <span class="muted">${n.subtype}</span>` : ''} ${statusPill(n.verification)}</h1>
${flash(data.flash)}
<div class="grid">
<section class="card"><h2>Decoded fields</h2><dl class="fields">${fields.map(([k, v]) => html`<dt>${k}</dt><dd class="mono">${v}</dd>`)}</dl></section>
<section class="card"><h2>Replay</h2>
<p>${data.deliveries.length > 0 ? replayForm(ctx, n.id, null, 'Replay to all its targets', true) : html`<span class="muted">No target has it.</span>`}</p>
${missing.length > 0 ? html`<p class="small muted">Send it to a target it never had:</p><p>${missing.map((t) => replayForm(ctx, n.id, t, `Send to ${t}`))}</p>` : ''}
${pending ? html`<p class="small muted">A delivery is pending; this page refreshes every 2 seconds.</p>` : ''}
</section>
</div>
<h2>Deliveries</h2>
${data.deliveries.length === 0 ? html`<p class="muted">No delivery (no target matched).</p>` : data.deliveries.map((d) => html`<section class="card delivery" data-target="${d.target}">
<h2>${d.target} ${statusPill(d.status)} <span class="muted small">${d.attempts} attempt${d.attempts === 1 ? '' : 's'}</span> ${replayForm(ctx, n.id, d.target, 'Replay to this target')}</h2>
<p class="small muted">${d.status === 'delivered' ? html`Delivered ${utc(d.deliveredAt)}` : d.status === 'pending' ? html`Next attempt ${utc(d.nextAttemptAt)}` : html`Gave up; last error: <span class="error">${d.lastError ?? '-'}</span>`}</p>
${d.history.length === 0 ? html`<p class="muted small">No attempt yet.</p>` : html`<table class="attempts"><tr><th>#</th><th>Started (UTC)</th><th>Duration</th><th>Status</th><th>Error</th><th>Response</th></tr>
${d.history.map((a) => html`<tr class="attempt"><td>${a.attempt}</td><td class="mono">${utc(a.startedAt)}</td><td>${a.durationMs} ms</td><td>${a.statusCode !== null ? html`<span class="pill ${a.statusCode >= 200 && a.statusCode < 300 ? 'ok' : 'bad'}">${a.statusCode}</span>` : '-'}</td><td class="error">${a.error ?? ''}</td><td class="mono small">${a.responseExcerpt ?? ''}</td></tr>`)}</table>`}
${data.decodedTargets?.includes(d.target) === true ? decodedSent(data.decoded) : ''}
</section>`)}
<h2>Payload</h2>
${data.payload !== null
    ? html`<pre>${JSON.stringify(data.payload, null, 2)}</pre>`
    : data.body === null
      ? html`<p class="error">${data.payloadError ?? 'The stored body cannot be read back.'}</p>`
      : html`<p class="muted">This body cannot be shown decoded: ${data.payloadError ?? 'it does not decode'} Its raw text as stored:</p><pre>${data.body}</pre>`}`, pending ? { refreshSeconds: 2 } : {})
}

export function deadPage (ctx: PageContext, data: { targets: Array<{ name: string; dead: number; items: Listed[] }>; flash: string | null }): Html {
  return layout(ctx, 'dead', 'Dead letters', html`<h1>Dead letters</h1>
${flash(data.flash)}
<p class="muted">Deliveries that kept failing until the give-up time. Fix the target, then replay them.</p>
${data.targets.map((t) => html`<section class="card" id="${t.name}"><h2>${t.name} <span class="pill ${t.dead > 0 ? 'dead' : 'ok'}">${t.dead} dead</span>
${t.dead > 0 ? html`<form class="inline" method="post" action="/admin/dead/replay" data-confirm="Replay all ${t.dead} dead deliveries of ${t.name}?">${csrfField(ctx)}<input type="hidden" name="target" value="${t.name}"><button class="primary" type="submit">Replay all dead of ${t.name}</button></form>` : ''}</h2>
${t.items.length > 0 ? notificationRows(t.items, t.name) : html`<p class="muted small">None.</p>`}
${t.dead > t.items.length ? html`<p class="pager"><a href="/admin/notifications?deliveryStatus=dead&amp;target=${encodeURIComponent(t.name)}">All ${t.dead} →</a></p>` : ''}
</section>`)}`)
}

export function quarantinePage (ctx: PageContext, data: { items: Array<Omit<QuarantineRow, 'body'>>; size: { items: number; bytes: number }; nextHref: string | null; flash: string | null }): Html {
  return layout(ctx, 'quarantine', 'Quarantine', html`<h1>Quarantine</h1>
${flash(data.flash)}
<p class="muted">Refused V2 payloads that were well-formed JWS: ${data.size.items} kept, ${data.size.bytes} bytes. Fix the configuration (bundle IDs, roots), then release: the payload goes through today's checks. Force release stores it as unverified.</p>
${data.items.length === 0 ? html`<p class="muted">The quarantine is empty.</p>` : html`<table><tr><th>#</th><th>Received (UTC)</th><th>Refused because</th><th>Type</th><th>Environment</th><th>Bundle ID</th><th>Size</th><th></th></tr>
${data.items.map((q) => html`<tr><td>${q.id}</td><td class="mono">${utc(q.receivedAt)}</td><td><span class="pill bad">${q.code}</span><br><span class="small">${q.reason}</span></td>
<td>${q.notificationType ?? '-'}</td><td>${q.environment ?? '-'}</td><td>${q.bundleId ?? '-'}</td><td>${q.bytes} B</td>
<td>${q.releasedAs !== null
    ? html`released ${utc(q.releasedAt)} as <a class="mono" href="${notificationHref(q.releasedAs)}">${q.releasedAs.slice(0, 13)}…</a>`
    : html`<form class="inline" method="post" action="/admin/quarantine/${q.id}/release">${csrfField(ctx)}<button type="submit">Release</button></form>
<form class="inline" method="post" action="/admin/quarantine/${q.id}/release" data-confirm="Accept this payload even though it does not pass the checks?">${csrfField(ctx)}<input type="hidden" name="force" value="1"><button class="danger" type="submit">Force release</button></form>`}</td></tr>`)}
</table>`}
${data.nextHref !== null ? html`<p class="pager"><a href="${data.nextHref}">Older →</a></p>` : ''}`)
}

function duration (ms: number | null): string {
  if (ms === null) return '-'
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`
}

function testResult (run: TestRun | 'gone'): Html {
  if (run === 'gone') return html`<section class="card test-result" data-outcome="gone"><p class="muted">That test-notification result is no longer here: storehook keeps the last ${KEPT_TEST_RUNS}, in memory, until it restarts.</p></section>`
  const r = run.report
  const title = html`Test notification, ${run.environment}, ${run.bundleId}`
  if (r === null) {
    return html`<section class="card test-result" data-outcome="running"><h2>${title} <span class="pill pending">asking Apple…</span></h2>
<p>Asked ${utc(run.at)}. storehook is waiting for Apple's send attempt, then for the TEST notification to reach storehook and every target. This page reloads itself until the verdict is in (up to a minute).</p></section>`
  }
  return html`<section class="card test-result" data-outcome="${r.outcome}"><h2>${title} <span class="pill ${r.ok ? 'ok' : 'bad'}">${r.ok ? 'reached every target' : r.outcome}</span></h2>
<p class="small muted">Asked ${utc(run.at)}.</p>
<p class="${r.ok ? '' : 'error'}">${r.message}</p>
${'sendAttempts' in r && r.sendAttempts.length > 0 ? html`<p class="small">Apple's send attempts: ${r.sendAttempts.map((a) => html`<span class="pill ${a.sendAttemptResult === 'SUCCESS' ? 'ok' : 'bad'}">${utc(a.attemptDate)} ${a.sendAttemptResult}</span>`)}</p>` : ''}
${'targets' in r && r.targets.length > 0 ? html`<table><tr><th>Target</th><th>Status</th><th>Attempts</th><th>Last error</th></tr>
${r.targets.map((t) => html`<tr><td>${t.name}</td><td>${statusPill(t.status)}</td><td>${t.attempts}</td><td class="error">${t.lastError ?? (t.lastStatusCode !== null ? `HTTP ${t.lastStatusCode}` : '')}</td></tr>`)}</table>` : ''}
${'notificationId' in r && r.notificationId !== null ? html`<p><a href="${notificationHref(r.notificationId)}">The TEST notification in storehook →</a></p>` : ''}
</section>`
}

// The App Store Server API side: the automatic catch-up from Apple's
// notification history, and a test notification followed end to end.
export function applePage (ctx: PageContext, data: { catchUp: CatchUpState; apps: string[]; test: TestRun | 'gone' | null; notConfigured: string }): Html {
  const c = data.catchUp
  return layout(ctx, 'apple', 'Apple', html`<h1>Apple</h1>
${data.test !== null ? testResult(data.test) : ''}
<div class="grid">
<section class="card catch-up"><h2>Automatic catch-up ${catchUpPills(c)}</h2>
${c.enabled
    ? html`<p class="small muted">At start and every ${duration(c.intervalMs)}, storehook asks Apple's notification history for what Apple failed to deliver (a margin of ${duration(c.marginMs)} before the last run), and puts whatever it did not have into the outbox.</p>`
    : html`<p class="error">${data.notConfigured}</p><p class="small muted">Without these, storehook cannot ask Apple for notifications it missed (catch-up, <code>storehook backfill</code>) nor request a test notification.</p>`}
</section>
<section class="card"><h2>Request a test notification</h2>
${c.enabled
    ? html`<p class="small muted">Apple sends a TEST notification to the URL set in App Store Connect; storehook then follows it to every target and says where it stopped. It takes up to a minute.</p>
<form method="post" action="/admin/apple/test-notification">${csrfField(ctx)}
<label>Environment<select name="environment"><option>Sandbox</option><option>Production</option></select></label>
${data.apps.length > 1 ? html`<label>App<select name="bundleId">${data.apps.map((a) => html`<option>${a}</option>`)}</select></label>` : ''}
<button class="primary" type="submit">Request a test notification</button></form>`
    : html`<p class="muted">Needs the App Store Server API keys (see the left).</p>`}
</section>
</div>
<h2>Last catch-up per app and environment</h2>
${c.runs.length === 0
    ? html`<p class="muted">${c.enabled ? 'No catch-up has run yet.' : 'None: the catch-up is off.'}</p>`
    : html`<table class="runs"><tr><th>App</th><th>Environment</th><th>Started (UTC)</th><th>Finished</th><th>Window asked for (UTC)</th><th>Pages</th><th>Seen</th><th>New</th><th>Already had</th><th>Refused</th><th>Error</th></tr>
${c.runs.map((r) => html`<tr class="run"><td>${r.bundleId}</td><td>${r.environment}</td><td class="mono">${utc(r.started)}<br><span class="muted small">${r.kind}${r.onlyFailures ? ', only failures' : ''}</span></td>
<td>${r.finished === null ? html`<span class="pill pending">not finished</span>` : html`<span class="mono small">${utc(r.finished)}</span> <span class="muted small">${ago(r.finished, ctx.now)}</span>`}</td>
<td class="mono small">${utc(r.window.startDate)} to ${utc(r.window.endDate)}</td><td>${r.pages}</td><td>${r.seen}</td>
<td>${r.new > 0 ? html`<span class="pill ok">${r.new}</span>` : '0'}</td><td>${r.already}</td><td>${r.refused > 0 ? html`<span class="pill bad">${r.refused}</span>` : '0'}</td>
<td class="error">${r.lastError ?? ''}</td></tr>`)}</table>`}`, data.test !== null && data.test !== 'gone' && data.test.report === null ? { refreshSeconds: 2 } : {})
}

// /admin/alerts (issue 17): the conditions open now, what was sent where,
// the destinations (by name and format: never their URLs), and the test button.
export function alertsPage (ctx: PageContext, data: { open: AlertEpisode[]; history: AlertMessage[]; destinations: AlertDestination[]; flash: string | null }): Html {
  return layout(ctx, 'alerts', 'Alerts', html`<h1>Alerts</h1>
${flash(data.flash)}
<section class="card"><h2>Open now</h2>
${data.open.length === 0
    ? html`<p class="muted">Nothing is wrong that storehook watches for.</p>`
    : html`<table><tr><th>Event</th><th>About</th><th>Since (UTC)</th><th>What was said</th></tr>
${data.open.map((e) => html`<tr><td><span class="pill bad">${e.event}</span></td><td>${e.subject}</td><td><span class="mono">${utc(e.openedAt)}</span> <span class="muted small">${ago(e.openedAt, ctx.now)}</span></td><td>${describe(e.event, e.subject, e.facts, e.openedAt, null).text}</td></tr>`)}</table>`}
</section>
<section class="card"><h2>Destinations</h2>
${data.destinations.length === 0
    ? html`<p class="muted">None: set <code>ALERT_URLS</code> (or <code>alerts</code> in the config file) to be told. Episodes are still kept and shown here.</p>`
    : html`<table><tr><th>Name</th><th>Format</th><th>Events</th></tr>
${data.destinations.map((d) => html`<tr><td>${d.name}</td><td>${d.format}</td><td class="small">${d.events === null ? 'all' : d.events.join(', ')}</td></tr>`)}</table>
<form method="post" action="/admin/alerts/test">${csrfField(ctx)}<button class="primary" type="submit">Send a test alert</button></form>`}
</section>
<h2>History</h2>
${data.history.length === 0
    ? html`<p class="muted">No alert sent yet.</p>`
    : html`<table><tr><th>Queued (UTC)</th><th>Event</th><th>About</th><th>Destination</th><th>Status</th><th>Attempts</th><th>Last error</th></tr>
${data.history.map((m) => html`<tr><td class="mono">${utc(m.createdAt)}</td><td>${m.event}</td><td>${m.subject}</td><td>${m.destination}</td><td>${statusPill(m.status === 'sent' ? 'delivered' : m.status === 'failed' ? 'dead' : 'pending')} ${m.status}</td><td>${m.attempts}</td><td class="error small">${m.lastError ?? ''}</td></tr>`)}</table>`}`)
}
