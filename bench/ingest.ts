// Durable ingest vs bare Fastify, in one run: both receive the same stream of
// distinct 4-12 KB notifications; storehook also forwards everything to a
// live target while it ingests. The durable floor (servers/durable.ts) runs
// the same rounds: the same contract with nothing but the work it requires,
// so storehook's own overhead and the machine's limit can be told apart.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bodyFactory, signedBodies } from './bodies.ts'
import { countAtTarget, load, median, startChild, startDurableFloor, startStorehook, type LoadResult } from './lib.ts'

export interface IngestRow {
  connections: number
  bare: LoadResult
  storehook: LoadResult
  ratio: number
  // bench/servers/durable.ts: the same contract with nothing but the work it
  // requires. Its ratio to bare Fastify is about the most any relay reaches here.
  durable: LoadResult
  forwardedDuringRun: number
  // The naive synchronous forwarder (verify off only), same target.
  naive: LoadResult | null
}


// Bare and storehook are measured in alternating rounds and the medians
// compared: on a shared 2-core machine a single pair of runs swings by 2x.
export interface IngestBenchOptions {
  connections?: number[]
  durationS?: number
  rounds?: number
  // 'off': unsigned-looking bodies against bare Fastify. 'enforce': really
  // signed bodies against the verifying floor (Fastify + one cached-key ES256 check).
  verify?: 'off' | 'enforce'
}

export async function runIngestBench (opts: IngestBenchOptions = {}): Promise<IngestRow[]> {
  const durationS = opts.durationS ?? 5
  const rounds = opts.rounds ?? 3
  const rows: IngestRow[] = []
  const dir = mkdtempSync(join(tmpdir(), 'storehook-bench-'))
  const env: Record<string, string> = { VERIFY_SIGNATURES: 'off' }
  let next = bodyFactory()
  let floorNext = next
  let durableNext = next
  if (opts.verify === 'enforce') {
    const signed = await signedBodies(60_000)
    next = signed.next
    floorNext = signed.floorNext
    durableNext = signed.durableNext
    writeFileSync(join(dir, 'root.pem'), signed.rootPem)
    Object.assign(env, { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: join(dir, 'root.pem') })
  }
  const bare = await startChild(['--import', 'tsx', opts.verify === 'enforce' ? 'bench/servers/verifying.ts' : 'bench/servers/bare.ts'])
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
  const durable = await startDurableFloor(join(dir, 'durable.db'), `http://127.0.0.1:${target.port}/hook`, { FLOOR_VERIFY: opts.verify === 'enforce' ? '1' : '0' })
  const storehook = await startStorehook({
    DATABASE_PATH: join(dir, 'bench.db'),
    FORWARD_TARGETS: `http://127.0.0.1:${target.port}/hook`,
    LOG_LEVEL: 'info',
    ...env
  })
  const naive = opts.verify === 'enforce' ? null : await startChild(['--import', 'tsx', 'bench/servers/naive.ts'], { TARGET_URL: `http://127.0.0.1:${target.port}/hook` })
  const naiveUrl = `http://127.0.0.1:${naive?.port ?? 0}/apple/notifications`
  const bareUrl = `http://127.0.0.1:${bare.port}/apple/notifications`
  const url = `http://127.0.0.1:${storehook.port}/apple/notifications`
  const durableUrl = `http://127.0.0.1:${durable.port}/apple/notifications`
  // Warm-up, each contender alone; the durable floor, like storehook, keeps
  // forwarding between rounds, so it is frozen whenever it is not measured.
  storehook.process.kill('SIGSTOP')
  await load(bareUrl, floorNext, { connections: 50, durationS: 2 })
  await load(durableUrl, durableNext, { connections: 50, durationS: 2 })
  durable.process.kill('SIGSTOP')
  storehook.process.kill('SIGCONT')
  await load(url, next, { connections: 50, durationS: 2 })
  try {
    for (const connections of opts.connections ?? [50, 100]) {
      const bares: LoadResult[] = []
      const ours: LoadResult[] = []
      const theirs: LoadResult[] = []
      const floors: LoadResult[] = []
      let forwarded = 0
      for (let i = 0; i < rounds; i++) {
        // storehook keeps forwarding its backlog between rounds: freeze it
        // while the floor is measured, so the two never share the CPU.
        storehook.process.kill('SIGSTOP')
        bares.push(await load(bareUrl, floorNext, { connections, durationS }))
        if (naive !== null) theirs.push(await load(naiveUrl, next, { connections, durationS }))
        durable.process.kill('SIGCONT')
        floors.push(await load(durableUrl, durableNext, { connections, durationS }))
        durable.process.kill('SIGSTOP')
        storehook.process.kill('SIGCONT')
        const before = await countAtTarget(target)
        ours.push(await load(url, next, { connections, durationS }))
        forwarded += (await countAtTarget(target)) - before
      }
      const pick = (rs: LoadResult[]): LoadResult => {
        const m = median(rs.map((r) => r.rps))
        return rs.find((r) => r.rps === m)!
      }
      const b = pick(bares)
      const o = pick(ours)
      rows.push({
        connections,
        bare: b,
        storehook: { ...o, requests: ours.reduce((n, r) => n + r.requests, 0), non2xx: ours.reduce((n, r) => n + r.non2xx, 0), errors: ours.reduce((n, r) => n + r.errors, 0) },
        ratio: o.rps / b.rps,
        durable: pick(floors),
        forwardedDuringRun: forwarded,
        naive: theirs.length > 0 ? pick(theirs) : null
      })
    }
  } finally {
    await storehook.stop()
    durable.process.kill('SIGCONT')
    await durable.stop()
    await naive?.stop()
    await target.stop()
    await bare.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}
