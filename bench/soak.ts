// `npm run soak`: SOAK_SECONDS (600) at SOAK_RATE (200) notifications/s, two
// targets (one steady, one flapping 200 / 500 / refused). Every 5 s: ingest
// p99, the server's resident memory, the database's size on disk. Writes
// docs/soak.csv and docs/soak.svg, and prints a summary for BENCHMARKS.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bodyFactory } from './bodies.ts'
import { countAtTarget, dbMb, load, machine, ROOT, rssMb, startChild, startStorehook } from './lib.ts'
import { svgPanels } from './plot.ts'
import { writeSoakSection } from './soak-report.ts'

const seconds = Number(process.env.SOAK_SECONDS ?? 600)
const rate = Number(process.env.SOAK_RATE ?? 200)
const sampleS = 5
const dir = mkdtempSync(join(tmpdir(), 'storehook-soak-'))
const dbPath = join(dir, 'soak.db')
const steady = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
const flapping = await startChild(['--import', 'tsx', 'bench/servers/flapping.ts'], { FLAP_MS: '5000' }, true)
const server = await startStorehook({
  DATABASE_PATH: dbPath,
  VERIFY_SIGNATURES: 'off',
  FORWARD_TARGETS: `http://127.0.0.1:${steady.port}/hook,http://127.0.0.1:${flapping.port}/hook`,
  RETRY_MIN_DELAY_MS: '500',
  RETRY_MAX_DELAY_MS: '10000',
  LOG_LEVEL: 'warn'
})
const url = `http://127.0.0.1:${server.port}/apple/notifications`
const next = bodyFactory()
console.log(`soak on ${machine()}: ${seconds} s at ${rate}/s, sample every ${sampleS} s`)
const rows: Array<{ t: number; p99: number; rss: number; db: number; accepted: number; failed: number }> = []
let accepted = 0
const started = Date.now()
try {
  while (Date.now() - started < seconds * 1000) {
    const r = await load(url, next, { connections: 10, durationS: sampleS, overallRate: rate })
    accepted += r.requests - r.non2xx - r.errors
    const row = { t: Math.round((Date.now() - started) / 1000), p99: r.p99, rss: rssMb(server.process.pid!), db: dbMb(dbPath), accepted, failed: r.non2xx + r.errors }
    rows.push(row)
    console.log(`t=${row.t}s p99=${row.p99}ms rss=${row.rss.toFixed(1)}MB db=${row.db.toFixed(1)}MB accepted=${accepted} failed=${row.failed}`)
  }
  // Let the backlog drain to the steady target before counting.
  const drainDeadline = Date.now() + 60_000
  let steadyGot = await countAtTarget(steady)
  while (steadyGot < accepted && Date.now() < drainDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    steadyGot = await countAtTarget(steady)
  }
  const flappingGot = await countAtTarget(flapping)
  writeFileSync(join(ROOT, 'docs/soak.csv'), 'seconds,ingest_p99_ms,rss_mb,db_mb,accepted_total,failed_in_sample\n' +
    rows.map((r) => `${r.t},${r.p99},${r.rss.toFixed(1)},${r.db.toFixed(2)},${r.accepted},${r.failed}`).join('\n') + '\n')
  writeFileSync(join(ROOT, 'docs/soak.svg'), svgPanels(rows.map((r) => r.t), [
    { title: 'Ingest p99', unit: 'ms', values: rows.map((r) => r.p99) },
    { title: 'Resident memory of the server', unit: 'MB', values: rows.map((r) => r.rss) },
    { title: 'Database on disk (file + WAL)', unit: 'MB', values: rows.map((r) => r.db) }
  ], `seconds (${rate} notifications/s, two targets, one flapping 200 / 500 / refused every 5 s)`))
  const p99s = rows.map((r) => r.p99).sort((a, b) => a - b)
  const summary = {
    seconds, rate, machine: machine(), samples: rows.length, accepted, failed: rows.reduce((n, r) => n + r.failed, 0),
    steadyReceived: steadyGot, flappingReceived200: flappingGot,
    p99MedianMs: p99s[Math.floor(p99s.length / 2)] ?? 0, p99MaxMs: p99s.at(-1) ?? 0,
    rssFirstMb: rows[0]?.rss ?? 0, rssLastMb: rows.at(-1)?.rss ?? 0, rssMaxMb: Math.max(...rows.map((r) => r.rss)),
    dbLastMb: rows.at(-1)?.db ?? 0, date: new Date().toISOString()
  }
  writeFileSync(join(ROOT, 'docs/soak.json'), JSON.stringify(summary, null, 2) + '\n')
  writeSoakSection(summary)
  console.log(JSON.stringify(summary))
} finally {
  await server.stop()
  await steady.stop()
  await flapping.stop()
  rmSync(dir, { recursive: true, force: true })
}
