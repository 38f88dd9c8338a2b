// "When" as operators type it, for the CLI and the dashboard's search: an ISO
// date, or a duration back from now (90m, 48h, 7d). null when it is neither.
export function parseWhen (value: string, now: number): number | null {
  const m = /^(\d+)(s|m|h|d)$/.exec(value)
  if (m !== null) return now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : at
}

// Milliseconds as ISO text, or null for a time JavaScript cannot represent
// (beyond ±8.64e15 ms: toISOString would throw). A row may hold one, left by
// an older version or a hand edit, and a page must not turn into a 500 for it.
export function isoTime (ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined) return null
  const at = new Date(ms)
  return Number.isNaN(at.getTime()) ? null : at.toISOString()
}

// The same for a command's flag: absent stays undefined, nonsense throws a message naming the flag.
export function parseWhenFlag (flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const at = parseWhen(value, now)
  if (at === null) throw new Error(`${flag}: "${value}" is neither an ISO date nor a duration such as 48h`)
  return at
}
