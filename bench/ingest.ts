// Durable ingest vs bare Fastify, in one run: both receive the same stream of
// distinct 4-12 KB notifications from 100 connections; storehook also forwards
// everything to a live target while it ingests.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bodyFactory } from './bodies.ts'
import { load, startChild, startStorehook, type LoadResult } from './lib.ts'

export interface IngestBench {
  bare: LoadResult
  storehook: LoadResult
  ratio: number
  delivered: number
}

export async function runIngestBench (opts: { connections?: number; durationS?: number } = {}): Promise<IngestBench> {
  const connections = opts.connections ?? 100
  const durationS = opts.durationS ?? 10
  const next = bodyFactory()

  const bare = await startChild(['--import', 'tsx', 'bench/servers/bare.ts'])
  await load(`http://127.0.0.1:${bare.port}/apple/notifications`, next, { connections, durationS: 2 }) // warm-up
  const bareResult = await load(`http://127.0.0.1:${bare.port}/apple/notifications`, next, { connections, durationS })
  await bare.stop()

  const dir = mkdtempSync(join(tmpdir(), 'storehook-bench-'))
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
  const storehook = await startStorehook({
    DATABASE_PATH: join(dir, 'bench.db'),
    FORWARD_TARGETS: `http://127.0.0.1:${target.port}/hook`,
    VERIFY_SIGNATURES: 'off',
    LOG_LEVEL: 'info'
  })
  await load(`http://127.0.0.1:${storehook.port}/apple/notifications`, next, { connections, durationS: 2 })
  const result = await load(`http://127.0.0.1:${storehook.port}/apple/notifications`, next, { connections, durationS })
  const delivered = await new Promise<number>((resolve) => {
    target.process.once('message', (m) => resolve((m as { count: number }).count))
    target.process.send('count')
  })
  await storehook.stop()
  await target.stop()
  rmSync(dir, { recursive: true, force: true })
  return { bare: bareResult, storehook: result, ratio: result.rps / bareResult.rps, delivered }
}
