// Isolation: ingest p99 while the target is instant, slow (answers after 2 s)
// or down, for storehook and for the naive synchronous forwarder. The two
// are measured in alternating rounds; the one not measured is frozen.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bodyFactory } from './bodies.ts'
import { freePort, load, median, startChild, startStorehook, type Child, type LoadResult } from './lib.ts'

export type Condition = 'instant' | 'slow 2 s' | 'down'
export interface IsolationRow { condition: Condition; storehook: LoadResult; naive: LoadResult }

export async function runIsolationBench (opts: { durationS: number; rounds: number; connections?: number }): Promise<IsolationRow[]> {
  const connections = opts.connections ?? 50
  const rows: IsolationRow[] = []
  const next = bodyFactory()
  for (const condition of ['instant', 'slow 2 s', 'down'] as Condition[]) {
    const dir = mkdtempSync(join(tmpdir(), 'storehook-iso-'))
    let target: Child | null = null
    let targetUrl: string
    if (condition === 'down') targetUrl = `http://127.0.0.1:${await freePort()}/hook`
    else {
      target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], condition === 'slow 2 s' ? { DELAY_MS: '2000' } : {}, true)
      targetUrl = `http://127.0.0.1:${target.port}/hook`
    }
    const storehook = await startStorehook({ DATABASE_PATH: join(dir, 'iso.db'), FORWARD_TARGETS: targetUrl, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' })
    const naive = await startChild(['--import', 'tsx', 'bench/servers/naive.ts'], { TARGET_URL: targetUrl })
    const ours: LoadResult[] = []
    const theirs: LoadResult[] = []
    try {
      for (let i = 0; i < opts.rounds; i++) {
        storehook.process.kill('SIGSTOP')
        theirs.push(await load(`http://127.0.0.1:${naive.port}/apple/notifications`, next, { connections, durationS: opts.durationS }))
        storehook.process.kill('SIGCONT')
        naive.process.kill('SIGSTOP')
        ours.push(await load(`http://127.0.0.1:${storehook.port}/apple/notifications`, next, { connections, durationS: opts.durationS }))
        naive.process.kill('SIGCONT')
      }
    } finally {
      await storehook.stop()
      await naive.stop()
      await target?.stop()
      rmSync(dir, { recursive: true, force: true })
    }
    const pick = (rs: LoadResult[]): LoadResult => {
      const m = median(rs.map((r) => r.p99))
      const r = rs.find((x) => x.p99 === m)!
      return { ...r, non2xx: rs.reduce((n, x) => n + x.non2xx, 0), errors: rs.reduce((n, x) => n + x.errors, 0), requests: rs.reduce((n, x) => n + x.requests, 0) }
    }
    rows.push({ condition, storehook: pick(ours), naive: pick(theirs) })
  }
  return rows
}
