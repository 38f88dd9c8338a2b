// `npm run bench:floors`: what each part of the contract costs on this
// machine. Bare Fastify, the durable floor (servers/durable.ts) whole and with
// parts taken away, and storehook, in alternating rounds (the contenders not
// measured frozen), 4-12 KB bodies, one live target. If the floor without
// forwarding and without the lookup indexes is still far below a goal, the
// goal is out of reach on this machine for any relay that keeps the body
// durably; storehook's own overhead is its distance to the whole floor.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bodyFactory } from './bodies.ts'
import { countAtTarget, load, median, startChild, startDurableFloor, startStorehook, type Child, type LoadResult } from './lib.ts'
import { describeMachine, writeSection } from './report.ts'

const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const durationS = Number(process.env.BENCH_SECONDS ?? 4)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const machine = describeMachine()
const started = new Date().toISOString().slice(0, 16).replace('T', ' ')
const dir = mkdtempSync(join(tmpdir(), 'storehook-floors-'))
const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
const hook = `http://127.0.0.1:${target.port}/hook`
const floor = (name: string, env: Record<string, string>): Promise<Child> => startDurableFloor(join(dir, `${name}.db`), hook, env)
const contenders: Array<[string, Child]> = [
  ['bare Fastify', await startChild(['--import', 'tsx', 'bench/servers/bare.ts'])],
  ['durable floor', await floor('whole', {})],
  ['durable floor, dedupe index only', await floor('dedupe', { FLOOR_INDEXES: 'dedupe' })],
  ['durable floor, no forwarding', await floor('quiet', { FLOOR_FORWARD: '0' })],
  ['durable floor, dedupe index only, no forwarding', await floor('least', { FLOOR_INDEXES: 'dedupe', FLOOR_FORWARD: '0' })],
  ['storehook', await startStorehook({ DATABASE_PATH: join(dir, 'storehook.db'), FORWARD_TARGETS: hook, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'info' })]
]
const next = bodyFactory()
const results = new Map<string, LoadResult[]>(contenders.map(([name]) => [name, []]))
const forwarded = new Map<string, number>(contenders.map(([name]) => [name, 0]))
try {
  for (const [, c] of contenders) c.process.kill('SIGSTOP')
  for (let i = 0; i < rounds; i++) {
    for (const [name, c] of contenders) {
      c.process.kill('SIGCONT')
      const before = await countAtTarget(target)
      results.get(name)!.push(await load(`http://127.0.0.1:${c.port}/apple/notifications`, next, { connections, durationS }))
      forwarded.set(name, forwarded.get(name)! + (await countAtTarget(target)) - before)
      c.process.kill('SIGSTOP')
    }
  }
} finally {
  for (const [, c] of contenders) {
    c.process.kill('SIGCONT')
    await c.stop()
  }
  await target.stop()
  rmSync(dir, { recursive: true, force: true })
}
const rps = (name: string): number => median(results.get(name)!.map((r) => r.rps))
const bare = rps('bare Fastify')
const lines = [
  '### What each part of the contract costs (`npm run bench:floors`)', '',
  `Measured ${started} UTC on ${machine}. ${rounds} alternating rounds of ${durationS} s at ${connections} connections, medians; 4-12 KB bodies, one live target.`,
  'The durable floor is bench/servers/durable.ts (see the ingest table); the variants take parts of the contract away from it.', '',
  '| contender | req/s | vs bare Fastify | p99 ms | forwarded during its rounds |', '|---|---|---|---|---|'
]
for (const [name] of contenders) {
  const p99 = median(results.get(name)!.map((r) => r.p99))
  lines.push(`| ${name} | ${Math.round(rps(name))} | ${(rps(name) / bare).toFixed(3)}x | ${p99} | ${forwarded.get(name)} |`)
}
console.log(lines.join('\n'))
writeSection('floors', lines)
