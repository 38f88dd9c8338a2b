// `npm run bench`: every benchmark in one run, figures as ratios to their
// floors, measured on this machine in this run.
import { runIngestBench } from './ingest.ts'
import { machine } from './lib.ts'
import { printVerifyTable, runVerifyBench } from './verify.ts'

const durationS = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
console.log(`storehook benchmarks on ${machine()}: ${rounds} alternating rounds of ${durationS} s, medians\n`)

const rows = await runIngestBench({ durationS, rounds })
console.log('Durable ingest: 4-12 KB V2 bodies with distinct notificationUUIDs, synchronous=FULL, forwarding to a live target during the run.\n')
console.log('| connections | bare Fastify req/s | storehook req/s | ratio (goal >= 0.25x) | storehook p50 / p99 ms (goal p99 < 50) | bare p99 ms | forwarded during the storehook rounds | errors |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(`| ${r.connections} | ${Math.round(r.bare.rps)} | ${Math.round(r.storehook.rps)} | ${r.ratio.toFixed(2)}x | ${r.storehook.p50} / ${r.storehook.p99} | ${r.bare.p99} | ${r.forwardedDuringRun} of ${r.storehook.requests} | ${r.storehook.non2xx + r.storehook.errors} |`)
}

const enforced = await runIngestBench({ durationS, rounds, verify: 'enforce', connections: [50] })
console.log('\nIngest with VERIFY_SIGNATURES=enforce: really signed 4-12 KB bodies vs the verifying floor (bare Fastify + one ES256 check with a cached key):\n')
console.log('| connections | verifying floor req/s | storehook enforce req/s | ratio (goal >= 0.6x) | storehook p50 / p99 ms | errors |')
console.log('|---|---|---|---|---|---|')
for (const r of enforced) {
  console.log(`| ${r.connections} | ${Math.round(r.bare.rps)} | ${Math.round(r.storehook.rps)} | ${r.ratio.toFixed(2)}x | ${r.storehook.p50} / ${r.storehook.p99} | ${r.storehook.non2xx + r.storehook.errors} |`)
}

console.log('\nSignature verification, same payloads, one process (storehook caches verified chains; every payload still gets its own ES256 check):\n')
printVerifyTable(await runVerifyBench({ durationS: 2, rounds }))
