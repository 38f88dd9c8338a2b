// Issue 16: ingest and drain on PostgreSQL with one storehook instance and
// with two sharing one database, beside SQLite and bare Fastify in the same
// run, as ratios. Every server is a child process; the load generator
// (autocannon, bench/lib.ts) never shares an event loop with what it measures.
//
//   node --import tsx bench/pg.ts          (BENCH_QUICK=1: a short smoke run)
//
// Ingest: 50 connections of distinct 4-12 KB bodies, storehook forwarding to a
// live target meanwhile; two instances get half the connections each, as a
// load balancer would split them, and their req/s are summed (p99: the worse
// of the two). Contenders are measured in alternating rounds, the others
// frozen with SIGSTOP, medians reported. Drain: a backlog of pending
// deliveries, then storehook (one instance, or two at once) starts with the
// target live: deliveries per second.
//
// The cluster runs with fsync on by default (PG_FSYNC=off to take the disk
// flush away): SQLite here commits with synchronous=FULL, so both pay theirs.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { v7 as uuidv7 } from 'uuid'
import { dedupeKeyOf } from '../src/outbox/engine.ts'
import { openPgStorage } from '../src/outbox/pg/engine.ts'
import { freshDatabase, postgresUnavailable, startPostgres, type Cluster } from '../test/helpers/postgres.ts'
import { bodyFactory } from './bodies.ts'
import { countAtTarget, freePort, load, median, startChild, startStorehook, type Child, type LoadResult } from './lib.ts'
import { describeMachine, writeSection } from './report.ts'
import { seedOutbox } from './seed.ts'

export interface PgBenchOptions {
  durationS: number
  rounds: number
  drainCount: number
  connections?: number
  fsync?: boolean
}

type Contender = 'bare' | 'sqlite' | 'pg1' | 'pg2'

export interface PgBenchResult {
  connections: number
  ingest: Record<Contender, LoadResult>
  // Deliveries per second; no bare Fastify here, nothing to drain.
  drain: Record<Exclude<Contender, 'bare'>, number>
}

// Two instances measured at once: requests and rates add up, the worse p99 counts.
function together (rs: LoadResult[]): LoadResult {
  return rs.reduce((a, b) => ({ requests: a.requests + b.requests, rps: a.rps + b.rps, p50: Math.max(a.p50, b.p50), p99: Math.max(a.p99, b.p99), non2xx: a.non2xx + b.non2xx, errors: a.errors + b.errors }))
}

function pick (rs: LoadResult[]): LoadResult {
  const m = median(rs.map((r) => r.rps))
  return rs.find((r) => r.rps === m)!
}

const freeze = (children: Child[], signal: 'SIGSTOP' | 'SIGCONT'): void => { for (const c of children) c.process.kill(signal) }

async function ingestBench (cluster: Cluster, dir: string, o: PgBenchOptions, connections: number): Promise<Record<Contender, LoadResult>> {
  const bare = await startChild(['--import', 'tsx', 'bench/servers/bare.ts'])
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
  const common = { FORWARD_TARGETS: `http://127.0.0.1:${target.port}/hook`, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' }
  const groups = new Map<Contender, Child[]>()
  try {
    groups.set('bare', [bare])
    groups.set('sqlite', [await startStorehook({ ...common, DATABASE_PATH: join(dir, 'ingest.db') })])
    const one = await freshDatabase(cluster)
    groups.set('pg1', [await startStorehook({ ...common, DATABASE_URL: one })])
    const two = await freshDatabase(cluster)
    groups.set('pg2', await Promise.all([startStorehook({ ...common, DATABASE_URL: two }), startStorehook({ ...common, DATABASE_URL: two })]))
    const storehooks = [...groups].filter(([k]) => k !== 'bare').flatMap(([, cs]) => cs)
    const next = bodyFactory()
    const measure = async (who: Contender, durationS: number): Promise<LoadResult> => {
      const children = groups.get(who)!
      // storehook keeps forwarding its backlog between rounds: only the
      // measured contender runs, so none shares the CPU with another's backlog.
      freeze(storehooks, 'SIGSTOP')
      if (who !== 'bare') freeze(children, 'SIGCONT')
      const per = Math.ceil(connections / children.length)
      return together(await Promise.all(children.map((c) => load(`http://127.0.0.1:${c.port}/apple/notifications`, next, { connections: per, durationS }))))
    }
    const order: Contender[] = ['bare', 'sqlite', 'pg1', 'pg2']
    // Warm-up: each alone, briefly (JIT, connection pools, the first pages).
    for (const who of order) await measure(who, 1)
    const results = new Map<Contender, LoadResult[]>(order.map((k) => [k, []]))
    for (let i = 0; i < o.rounds; i++) for (const who of order) results.get(who)!.push(await measure(who, o.durationS))
    freeze(storehooks, 'SIGCONT')
    return Object.fromEntries(order.map((k) => [k, pick(results.get(k)!)])) as Record<Contender, LoadResult>
  } finally {
    for (const cs of groups.values()) for (const c of cs) c.process.kill('SIGCONT')
    await Promise.all([...groups.values()].flat().map((c) => c.stop()))
    await target.stop()
  }
}

// The PostgreSQL backlog through the engine's own enqueue, 16 at a time
// (the SQLite one comes from seed.ts, through the SQLite store's).
async function seedPg (url: string, target: string, count: number): Promise<void> {
  const { outbox } = await openPgStorage({ url })
  const next = bodyFactory()
  let left = count
  try {
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (left-- > 0) {
        const id = uuidv7()
        const body = next()
        await outbox.enqueue({
          id, dedupeKey: dedupeKeyOf(id, body), notificationUuid: id, receivedAt: Date.now(), source: 'webhook', version: 2,
          notificationType: 'DID_RENEW', environment: 'Production', bundleId: 'com.example.app', verification: 'unchecked', body
        }, [target], [])
      }
    }))
  } finally {
    await outbox.close()
  }
}

async function drainBench (cluster: Cluster, dir: string, count: number): Promise<PgBenchResult['drain']> {
  const port = await freePort()
  const name = `127.0.0.1:${port}`
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], { PORT: String(port) }, true)
  const common = { FORWARD_TARGETS: `http://${name}/hook`, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' }
  // Measured from the moment every instance serves: what was delivered while
  // they started is left out of both the count and the time.
  const drain = async (envs: Array<Record<string, string>>): Promise<number> => {
    const base = await countAtTarget(target)
    const children = await Promise.all(envs.map((env) => startStorehook({ ...common, ...env })))
    try {
      const t0 = performance.now()
      const c0 = (await countAtTarget(target)) - base
      while ((await countAtTarget(target)) - base < count) await new Promise((resolve) => setTimeout(resolve, 20))
      return (count - c0) / ((performance.now() - t0) / 1000)
    } finally {
      await Promise.all(children.map((c) => c.stop()))
    }
  }
  try {
    seedOutbox(join(dir, 'drain.db'), { count, target: name, deliveredShare: 0, pendingDueAt: Date.now() })
    const sqlite = await drain([{ DATABASE_PATH: join(dir, 'drain.db') }])
    const one = await freshDatabase(cluster)
    await seedPg(one, name, count)
    const pg1 = await drain([{ DATABASE_URL: one }])
    const two = await freshDatabase(cluster)
    await seedPg(two, name, count)
    const pg2 = await drain([{ DATABASE_URL: two }, { DATABASE_URL: two }])
    return { sqlite, pg1, pg2 }
  } finally {
    await target.stop()
  }
}

export async function runPgBench (o: PgBenchOptions): Promise<PgBenchResult> {
  const connections = o.connections ?? 50
  const cluster = await startPostgres({ fsync: o.fsync ?? true })
  const dir = mkdtempSync(join(tmpdir(), 'storehook-pg-bench-'))
  try {
    const ingest = await ingestBench(cluster, dir, o, connections)
    const drain = await drainBench(cluster, dir, o.drainCount)
    return { connections, ingest, drain }
  } finally {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export function pgTable (r: PgBenchResult, o: PgBenchOptions): string[] {
  const x = (v: number): string => `${v.toFixed(2)}x`
  const { bare, sqlite, pg1, pg2 } = r.ingest
  const row = (label: string, l: LoadResult): string =>
    `| ${label} | ${Math.round(l.rps)} | ${x(l.rps / bare.rps)} | ${x(l.rps / sqlite.rps)} | ${l.p99} | ${l.non2xx + l.errors} |`
  return [
    `${o.rounds} alternating rounds of ${o.durationS} s per contender at ${r.connections} connections, medians; the contenders not measured are frozen with SIGSTOP. PostgreSQL 15 on this machine, fsync ${o.fsync === false ? 'off' : 'on'}, synchronous_commit on; two instances share one database and split the connections.`, '',
    '| ingest | req/s | / bare Fastify | / SQLite | p99 ms | errors |', '|---|---|---|---|---|---|',
    `| bare Fastify | ${Math.round(bare.rps)} | 1.00x | | ${bare.p99} | ${bare.non2xx + bare.errors} |`,
    row('storehook, SQLite', sqlite),
    row('storehook, PostgreSQL, 1 instance', pg1),
    row('storehook, PostgreSQL, 2 instances', pg2),
    '', `Second instance adds (ingest): ${x(pg2.rps / pg1.rps)} of one instance's req/s.`, '',
    `| drain ${o.drainCount.toLocaleString('en')} pending (4-12 KB) | deliveries/s | / SQLite |`, '|---|---|---|',
    `| SQLite | ${Math.round(r.drain.sqlite)} | 1.00x |`,
    `| PostgreSQL, 1 instance | ${Math.round(r.drain.pg1)} | ${x(r.drain.pg1 / r.drain.sqlite)} |`,
    `| PostgreSQL, 2 instances | ${Math.round(r.drain.pg2)} | ${x(r.drain.pg2 / r.drain.sqlite)} |`,
    '', `Second instance adds (drain): ${x(r.drain.pg2 / r.drain.pg1)} of one instance's deliveries/s.`
  ]
}

// The section of BENCHMARKS.md, under its own markers: `npm run bench` and
// this script alone both rewrite it.
export function pgSection (table: string[], quick: boolean): string[] {
  return [
    '### PostgreSQL: one instance and two on one database (`node --import tsx bench/pg.ts`)', '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${describeMachine()}.${quick ? ' Quick smoke run (BENCH_QUICK=1): indicative only.' : ''}`, '',
    ...table
  ]
}

// Run directly (not imported by bench/run.ts).
if (import.meta.url === `file://${process.argv[1]}`) {
  const unavailable = postgresUnavailable()
  if (unavailable !== null) {
    console.log(unavailable)
  } else {
    const quick = process.env.BENCH_QUICK === '1'
    const o: PgBenchOptions = {
      durationS: Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5)),
      rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3)),
      drainCount: Number(process.env.BENCH_DRAIN ?? (quick ? 3_000 : 20_000)),
      fsync: process.env.PG_FSYNC !== 'off'
    }
    const lines = pgSection(pgTable(await runPgBench(o), o), quick)
    console.log(lines.join('\n'))
    // A full run's figures are the section of BENCHMARKS.md; a quick one is only printed.
    if (!quick) writeSection('pg', lines)
  }
}
