// Reading a /metrics scrape in tests: how many series it holds, and which
// values a label takes, so tests can check that no sender grows it.

export async function scrape (url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return res.text()
}

// One series per sample line (comments and blank lines are not series).
export function seriesLines (text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
}

// The distinct values `label` takes across the samples of `metric`.
export function labelValues (text: string, metric: string, label: string): Set<string> {
  const values = new Set<string>()
  const pattern = new RegExp(`[{,]${label}="([^"]*)"`)
  for (const line of seriesLines(text)) {
    if (!line.startsWith(`${metric}{`)) continue
    const m = pattern.exec(line)
    if (m !== null) values.add(m[1]!)
  }
  return values
}
