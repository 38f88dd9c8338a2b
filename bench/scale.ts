// Scale: an outbox of N notifications (90% delivered, 10% pending retries due
// in an hour) against an empty one: the claim query's latency, ingest rate
// (alternating rounds, the other server frozen), and resident memory.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../src/db/client.ts'
import { claimDue } from '../src/outbox/store.ts'
import { bodyFactory } from './bodies.ts'
import { dbMb, freePort, load, median, rssMb, startChild, startStorehook, type LoadResult } from './lib.ts'
import { seedOutbox } from './seed.ts'

export interface Claim { medianUs: number; p99Us: number }
export interface ScaleResult {
  rows: number
  seedSeconds: number
  dbMb: number
  claim: { empty: Claim; full: Claim }
  ingest: { empty: LoadResult; full: LoadResult; ratio: number }
  rssMb: { empty: number; full: number }
}

const ROLLBACK = new Error('rollback')

// The claim of a worker (4 at a time, as a target's default concurrency),
// rolled back each time so every sample sees the same rows.
function claimLatency (path: string, target: string): Claim {
  const database = openDatabase(path)
  const samples: number[] = []
  try {
    for (let i = 0; i < 400; i++) {
      try {
        database.transaction(() => {
          const now = Date.now()
          const t = performance.now()
          const got = claimDue(database.db, target, 4, now, now + 60_000)
          samples.push((performance.now() - t) * 1000)
          if (got.length !== 4) throw new Error(`claimed ${got.length}, expected 4`)
          throw ROLLBACK
        })
      } catch (err) {
        if (err !== ROLLBACK) throw err
      }
    }
  } finally {
    database.close()
  }
  const s = samples.slice(50).sort((a, b) => a - b)
  return { medianUs: s[Math.floor(s.length / 2)]!, p99Us: s[Math.floor(s.length * 0.99)]! }
}

export async function runScaleBench (opts: { rows: number; durationS: number; rounds: number }): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-scale-'))
  const port = await freePort()
  const name = `127.0.0.1:${port}`
  const empty = join(dir, 'empty.db')
  const full = join(dir, 'full.db')
  try {
    const started = performance.now()
    // Seeded rows are 1-3 KB (a million 4-12 KB bodies would be 8 GB of disk for no more insight: bodies are not indexed).
    seedOutbox(full, { count: opts.rows, target: name, deliveredShare: 0.9, pendingDueAt: Date.now() + 3_600_000, sizes: [1024, 2048, 3072] })
    const seedSeconds = (performance.now() - started) / 1000
    // Both get the same 1,000 due deliveries for the claim to find.
    for (const path of [empty, full]) seedOutbox(path, { count: 1000, target: name, deliveredShare: 0, pendingDueAt: Date.now() - 1000, sizes: [1024] })
    const claim = { empty: claimLatency(empty, name), full: claimLatency(full, name) }
    const size = dbMb(full)

    const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], { PORT: String(port) }, true)
    const env = { FORWARD_TARGETS: `http://${name}/hook`, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' }
    const a = await startStorehook({ ...env, DATABASE_PATH: empty })
    const b = await startStorehook({ ...env, DATABASE_PATH: full })
    const next = bodyFactory()
    const ea: LoadResult[] = []
    const fb: LoadResult[] = []
    try {
      for (let i = 0; i < opts.rounds; i++) {
        b.process.kill('SIGSTOP')
        ea.push(await load(`http://127.0.0.1:${a.port}/apple/notifications`, next, { connections: 50, durationS: opts.durationS }))
        b.process.kill('SIGCONT')
        a.process.kill('SIGSTOP')
        fb.push(await load(`http://127.0.0.1:${b.port}/apple/notifications`, next, { connections: 50, durationS: opts.durationS }))
        a.process.kill('SIGCONT')
      }
      const pick = (rs: LoadResult[]): LoadResult => { const m = median(rs.map((r) => r.rps)); return rs.find((r) => r.rps === m)! }
      const e = pick(ea)
      const f = pick(fb)
      return {
        rows: opts.rows,
        seedSeconds,
        dbMb: size,
        claim,
        ingest: { empty: e, full: f, ratio: f.rps / e.rps },
        rssMb: { empty: rssMb(a.process.pid!), full: rssMb(b.process.pid!) }
      }
    } finally {
      await a.stop()
      await b.stop()
      await target.stop()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
