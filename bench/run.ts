// `npm run bench`: every benchmark in one run, figures as ratios to their
// floors, measured on this machine in this run, printed and written into
// BENCHMARKS.md. BENCH_QUICK=1: a smoke run (short rounds, small backlogs).
import { runDrainBench } from './drain.ts'
import { footprintTable, runFootprintBench } from './footprint.ts'
import { runIngestBench } from './ingest.ts'
import { runIsolationBench } from './isolation.ts'
import { pgSection, pgTable, runPgBench, type PgBenchOptions } from './pg.ts'
import { describeMachine, writeSection } from './report.ts'
import { retentionTable, runRetentionBench } from './retention.ts'
import { runScaleBench } from './scale.ts'
import { runVerifyBench, verifyTable } from './verify.ts'
import { postgresUnavailable } from '../test/helpers/postgres.ts'

const quick = process.env.BENCH_QUICK === '1'
const durationS = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5))
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3))
const drainCount = Number(process.env.BENCH_DRAIN ?? (quick ? 5_000 : 50_000))
const scaleRows = Number(process.env.BENCH_SCALE_ROWS ?? (quick ? 50_000 : 1_000_000))
const out: string[] = []
const say = (...lines: string[]): void => { for (const l of lines) { console.log(l); out.push(l) } }
const x = (r: number, digits = 2): string => `${r.toFixed(digits)}x`

say(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${describeMachine()}.`,
  `${rounds} alternating rounds of ${durationS} s per contender, medians; the contender not measured is frozen with SIGSTOP. ${quick ? '**Quick smoke run (BENCH_QUICK=1): figures are indicative only.**' : ''}`, '')

const rows = await runIngestBench({ durationS, rounds })
say('### Durable ingest, forwarding live (verification off)', '',
  '4-12 KB V2 bodies with distinct notificationUUIDs, synchronous=FULL, forwarding to a live target that answers at once.',
  'The durable floor (bench/servers/durable.ts) is the same contract with nothing but the work it requires: decode, one group commit per turn on a writer thread into the same tables and indexes, the POST, the attempt row. No logs, leases, claims or metrics. Its ratio to bare Fastify is about the most any relay keeping that contract reaches on this machine.', '',
  '| connections | bare Fastify req/s | storehook req/s | storehook / bare (goal >= 0.25x) | durable floor req/s | durable floor / bare | storehook / durable floor | naive forwarder req/s | storehook / naive (goal > 1x) | p99 ms: storehook / durable floor / naive / bare | errors (storehook) |',
  '|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  const n = r.naive!
  say(`| ${r.connections} | ${Math.round(r.bare.rps)} | ${Math.round(r.storehook.rps)} | ${x(r.ratio)} | ${Math.round(r.durable.rps)} | ${x(r.durable.rps / r.bare.rps)} | ${x(r.storehook.rps / r.durable.rps)} | ${Math.round(n.rps)} | ${x(r.storehook.rps / n.rps)} | ${r.storehook.p99} / ${r.durable.p99} / ${n.p99} / ${r.bare.p99} | ${r.storehook.non2xx + r.storehook.errors} |`)
}

const enforced = await runIngestBench({ durationS, rounds, verify: 'enforce', connections: [50] })
say('', '### Ingest with VERIFY_SIGNATURES=enforce', '',
  'Really signed 4-12 KB bodies (a private Apple-shaped chain) vs the verifying floor: bare Fastify plus one cached-key ES256 check. The durable floor here adds the same check before its write.', '',
  '| connections | verifying floor req/s | storehook enforce req/s | ratio (goal >= 0.6x) | durable verifying floor req/s | durable floor / verifying floor | storehook / durable floor | storehook p50 / p99 ms | errors |', '|---|---|---|---|---|---|---|---|---|')
for (const r of enforced) say(`| ${r.connections} | ${Math.round(r.bare.rps)} | ${Math.round(r.storehook.rps)} | ${x(r.ratio)} | ${Math.round(r.durable.rps)} | ${x(r.durable.rps / r.bare.rps)} | ${x(r.storehook.rps / r.durable.rps)} | ${r.storehook.p50} / ${r.storehook.p99} | ${r.storehook.non2xx + r.storehook.errors} |`)

const iso = await runIsolationBench({ durationS: Math.max(durationS, 4), rounds })
const base = iso.find((r) => r.condition === 'instant')!.storehook.p99
say('', '### Isolation: ingest p99 when the target is slow or down', '',
  '50 connections. The naive forwarder answers only after the target did; with the target down it answers 502 at once (the notification is not kept: Apple must retry it).', '',
  '| target | storehook p99 ms | vs instant (goal <= 1.5x) | storehook req/s | naive p99 ms | naive req/s | naive non-2xx |', '|---|---|---|---|---|---|---|')
for (const r of iso) say(`| ${r.condition} | ${r.storehook.p99} | ${x(r.storehook.p99 / base)} | ${Math.round(r.storehook.rps)} | ${r.naive.p99} | ${Math.round(r.naive.rps)} | ${r.naive.non2xx + r.naive.errors} of ${r.naive.requests} |`)

const drain = await runDrainBench({ count: drainCount })
say('', '### Drain a backlog', '',
  `${drain.count.toLocaleString('en')} pending deliveries (4-12 KB), then storehook starts with the target live; floor: a plain undici Pool posting the same sizes to the same target with the same concurrency (4, storehook's default per target).`, '',
  '| backlog | storehook deliveries/s | undici floor/s | ratio (goal >= 0.5x) |', '|---|---|---|---|',
  `| ${drain.count} | ${Math.round(drain.storehookPerS)} | ${Math.round(drain.floorPerS)} | ${x(drain.ratio)} |`)

// Issue 16. The PostgreSQL backlog is seeded through the engine's own
// enqueue, one transaction a row, so it is smaller than SQLite's above.
const pgOptions: PgBenchOptions = { durationS, rounds, drainCount: Number(process.env.BENCH_PG_DRAIN ?? (quick ? 3_000 : 10_000)) }
const pgUnavailable = postgresUnavailable()
const pg = pgSection(pgUnavailable === null ? pgTable(await runPgBench(pgOptions), pgOptions) : [pgUnavailable], quick)
console.log(`\n${pg.join('\n')}`)

const scale = await runScaleBench({ rows: scaleRows, durationS, rounds })
say('', '### Scale: a full outbox vs an empty one', '',
  `${scale.rows.toLocaleString('en')} notifications (1-3 KB bodies; 90% delivered, 10% pending retries due in an hour; ${Math.round(scale.dbMb)} MB on disk, seeded in ${Math.round(scale.seedSeconds)} s), plus 1,000 due deliveries in both. Claim: src/outbox/store.ts claimDue of 4, rolled back, 350 samples. Ingest: 50 connections, 4-12 KB bodies.`, '',
  '| | empty | full | full / empty (goal <= 2x for claim, >= 0.5x for ingest) |', '|---|---|---|---|',
  `| claim median µs | ${scale.claim.empty.medianUs.toFixed(0)} | ${scale.claim.full.medianUs.toFixed(0)} | ${x(scale.claim.full.medianUs / scale.claim.empty.medianUs)} |`,
  `| claim p99 µs | ${scale.claim.empty.p99Us.toFixed(0)} | ${scale.claim.full.p99Us.toFixed(0)} | ${x(scale.claim.full.p99Us / scale.claim.empty.p99Us)} |`,
  `| ingest req/s | ${Math.round(scale.ingest.empty.rps)} | ${Math.round(scale.ingest.full.rps)} | ${x(scale.ingest.ratio)} |`,
  `| ingest p99 ms | ${scale.ingest.empty.p99} | ${scale.ingest.full.p99} | |`,
  `| server RSS MB after the rounds (goal < 200) | ${scale.rssMb.empty.toFixed(0)} | ${scale.rssMb.full.toFixed(0)} | |`)

say('', '### Signature verification', '', 'Same payloads, one process; storehook caches verified chains, every payload still gets its own ES256 check.', '')
say(...verifyTable(await runVerifyBench({ durationS: 2, rounds })))

const retentionOpts = { days: quick ? 40 : 90, perDay: quick ? 200 : 1000, retentionDays: 30, every: 10 }
const kept = runRetentionBench(retentionOpts)
say('', '### Retention: the file levels off', '',
  `The real store functions on a simulated clock: ${retentionOpts.perDay} notifications a day (4-12 KB, two targets, an attempt each), pruned daily with RETENTION_DAYS=${retentionOpts.retentionDays}.`, '',
  ...retentionTable(kept))

writeSection('bench', out)
writeSection('pg', pg)

// Issue 15's per-notification costs, under their own markers so that
// `npm run bench:footprint` alone rewrites the same section.
const footprintOptions = { durationS: quick ? 3 : Math.max(durationS, 20) }
const footprintRun = await runFootprintBench(footprintOptions)
const footprint = footprintTable(footprintRun, describeMachine(), quick, await runFootprintBench({ ...footprintOptions, server: 'floor' }))
console.log(`\n${footprint.join('\n')}`)
writeSection('footprint', footprint)
console.log('\nWritten to BENCHMARKS.md.')
