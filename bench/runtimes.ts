// npm run bench:runtimes: the three ways to run storehook side by side on
// this machine: Node on the tsc output, the single binary (build it first),
// and Deno on the sources. Start-up is exec to /readyz answering 200; ingest
// is durable ingest of distinct 4-12 KB bodies, no target, alternating rounds.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BIN, spawnServer, type Runner } from '../test/helpers/process.ts'
import { bodyFactory } from './bodies.ts'
import { load, machine, ROOT } from './lib.ts'

const durationS = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)

const runners: Record<string, Runner> = {
  node: { command: [process.execPath, BIN] },
  binary: { command: [join(ROOT, 'dist', 'storehook')] },
  deno: { command: [join(ROOT, 'node_modules', '.bin', 'deno'), 'run', '-A', '--node-modules-dir=manual', join(ROOT, 'src', 'main.ts')], cwd: ROOT, startTimeoutMs: 60_000 }
}
if (!existsSync(runners.binary!.command[0]!)) delete runners.binary

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const readyMs: Record<string, number[]> = {}
const rps: Record<string, number[]> = {}

for (let round = 0; round < rounds; round++) {
  for (const [name, runner] of Object.entries(runners)) {
    const dir = mkdtempSync(join(tmpdir(), 'storehook-bench-'))
    const started = performance.now()
    const server = await spawnServer({ DATABASE_PATH: join(dir, 'storehook.db'), LOG_LEVEL: 'info' }, ['serve'], runner)
    while ((await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0)) !== 200) await sleep(5)
    ;(readyMs[name] ??= []).push(performance.now() - started)
    const r = await load(`${server.url}/apple/notifications`, bodyFactory(), { connections: 50, durationS })
    ;(rps[name] ??= []).push(r.rps)
    await server.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

console.log(`storehook runtimes on ${machine()}: ${rounds} alternating rounds of ${durationS} s at 50 connections, medians\n`)
console.log('| runtime | start-up to /readyz 200, ms | durable ingest req/s |')
console.log('|---|---|---|')
for (const name of Object.keys(runners)) console.log(`| ${name} | ${Math.round(median(readyMs[name]!))} | ${Math.round(median(rps[name]!))} |`)
