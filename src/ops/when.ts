// The CLI's time arguments: an ISO date, or a duration back from now (90m, 48h, 7d).
export function parseWhen (flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+)(s|m|h|d)$/.exec(value)
  if (m !== null) return now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  const at = Date.parse(value)
  if (Number.isNaN(at)) throw new Error(`${flag}: "${value}" is neither an ISO date nor a duration such as 48h`)
  return at
}
