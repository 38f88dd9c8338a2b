// BENCHMARKS.md: `npm run bench` rewrites the section between its markers,
// so the file's hand-written parts (soak, reading notes) survive a rerun.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './lib.ts'

export const BENCHMARKS = join(ROOT, 'BENCHMARKS.md')

export function describeMachine (): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown CPU'
  return `${model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ${process.platform} ${process.arch}; load average at start ${loadavg().map((l) => l.toFixed(1)).join(' / ')}`
}

export function writeSection (name: string, lines: string[], file = BENCHMARKS): void {
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const body = `${start}\n${lines.join('\n')}\n${end}`
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# storehook benchmarks\n\n'
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  writeFileSync(file, i >= 0 && j > i ? text.slice(0, i) + body + text.slice(j + end.length) : `${text.trimEnd()}\n\n${body}\n`)
}
