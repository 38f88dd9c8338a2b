// HTML built with template literals, escaped by default. Written by hand
// because no template library is installed and the job is small: every
// interpolated value is escaped unless it is already an Html fragment built
// by this same tag, so user-controlled text (payload fields, target errors,
// bundle IDs) cannot open a tag or leave an attribute. Templates always
// quote attributes with "".

import { isoTime } from '../ops/when.ts'

export class Html {
  readonly value: string
  constructor (value: string) { this.value = value }
  toString (): string { return this.value }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' }

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!)
}

function render (value: unknown): string {
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(String(value))
}

export function html (strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new Html(out)
}

// Milliseconds since the epoch, shown as UTC ISO text (App Store Connect and
// the logs speak UTC too); '-' for none or for one no Date can hold.
export function utc (ms: number | null | undefined): string {
  return isoTime(ms)?.replace(/\.\d{3}Z$/, 'Z') ?? '-'
}

export function ago (ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return '-'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 90) return `${s} s ago`
  if (s < 5400) return `${Math.round(s / 60)} min ago`
  if (s < 129_600) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}
