// The soak section of BENCHMARKS.md, from docs/soak.json (written by
// bench/soak.ts). Run alone, it rewrites the section from the last soak.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './lib.ts'
import { writeSection } from './report.ts'

export interface SoakSummary {
  seconds: number; rate: number; machine: string; samples: number; accepted: number; failed: number
  steadyReceived: number; flappingReceived200: number; p99MedianMs: number; p99MaxMs: number
  rssFirstMb: number; rssLastMb: number; rssMaxMb: number; dbLastMb: number; date: string
}

export function writeSoakSection (s: SoakSummary): void {
  writeSection('soak', [
    `${s.date.slice(0, 16).replace('T', ' ')} UTC, ${s.machine} (shared). ${s.seconds} s asking for ${s.rate} notifications/s (autocannon, 10 connections, 4-12 KB bodies), two targets: one steady, one flapping 200 / 500 / connection refused, 5 s each. Sampled every 5 s: [docs/soak.csv](docs/soak.csv).`,
    '',
    '![Soak: ingest p99, resident memory and database size over 10 minutes](docs/soak.svg)',
    '',
    '| accepted (200) | refused or failed | mean rate | ingest p99, median of samples / worst | RSS first / max / last | database at the end | steady target got | flapping target accepted |',
    '|---|---|---|---|---|---|---|---|',
    `| ${s.accepted} | ${s.failed} | ${Math.round(s.accepted / s.seconds)}/s | ${s.p99MedianMs} / ${s.p99MaxMs} ms | ${Math.round(s.rssFirstMb)} / ${Math.round(s.rssMaxMb)} / ${Math.round(s.rssLastMb)} MB | ${Math.round(s.dbLastMb)} MB | ${s.steadyReceived} | ${s.flappingReceived200} |`
  ])
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeSoakSection(JSON.parse(readFileSync(join(ROOT, 'docs/soak.json'), 'utf8')) as SoakSummary)
}
