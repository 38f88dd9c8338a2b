// `npm run bench`: every benchmark in one run, figures as ratios to their
// floors, measured on this machine in this run.
import { runIngestBench } from './ingest.ts'
import { machine } from './lib.ts'

const durationS = Number(process.env.BENCH_SECONDS ?? 10)
console.log(`storehook benchmarks on ${machine()}, ${durationS} s per measurement\n`)

const ingest = await runIngestBench({ durationS })
const row = (name: string, r: { rps: number; p50: number; p99: number; non2xx: number; errors: number }): string =>
  `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.non2xx + r.errors} |`
console.log('Durable ingest (4-12 KB V2 bodies, distinct UUIDs, 100 connections, forwarding live):\n')
console.log('| server | req/s | p50 ms | p99 ms | non-2xx/errors |')
console.log('|---|---|---|---|---|')
console.log(row('bare Fastify (floor)', ingest.bare))
console.log(row('storehook, synchronous=FULL, group commit', ingest.storehook))
console.log(`\nratio storehook / bare: ${ingest.ratio.toFixed(2)}x (goal >= 0.25x); p99 ${ingest.storehook.p99} ms (goal < 50 ms)`)
console.log(`forwarded to the live target during the run: ${ingest.delivered} of ${ingest.storehook.requests} accepted`)
