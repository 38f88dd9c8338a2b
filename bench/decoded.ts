// `npm run bench:decoded` (builds, then node --import tsx bench/decoded.ts)
// (issue 18), under a minute:
// 1. What the decoded document costs per notification (src/decoded/document.ts,
//    one event loop, one core), next to what a receiver pays to get the same
//    fields from Apple's library (verify and decode the notification, then
//    each nested JWS): the real Apple notification, a signed SUBSCRIBED with
//    its transaction and renewal, and the ingest benchmark's 4-12 KB bodies.
// 2. Ingest with one live target that wants Apple's bytes vs one that wants
//    the decoded document, both signed (so only the decoding differs), in
//    alternating rounds: decoding runs after Apple's answer, in the worker,
//    so ingest must not drop.
// BENCH_SECONDS (default 3) per round, BENCH_ROUNDS (default 2).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodedDocument, type DocumentFacts } from '../src/decoded/document.ts'
import { appleDecodes, cases, type Case } from '../test/helpers/decoded.ts'
import { bodyFactory } from './bodies.ts'
import { countAtTarget, load, machine, median, startChild, startStorehook, type LoadResult } from './lib.ts'

const durationS = Number(process.env.BENCH_SECONDS ?? 3)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const FACTS: DocumentFacts = { id: '0193b3c4-0000-7000-8000-000000000001', source: 'webhook', receivedAt: Date.now(), verification: 'verified', verificationError: null }
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

async function rate (seconds: number, once: () => unknown): Promise<number> {
  const end = performance.now() + seconds * 1000
  const start = performance.now()
  let n = 0
  while (performance.now() < end) {
    // A synchronous call is not awaited: a microtask per call would be measured too.
    const r = once()
    if (r instanceof Promise) await r
    n++
  }
  return n / ((performance.now() - start) / 1000)
}

async function decodeCost (): Promise<string[]> {
  const { all } = cases()
  const pick = (name: string): Case => all.find((c) => c.name === name)!
  const subscribed = pick('signedNotification (data)')
  const real = pick('real Production TEST from Apple')
  const next = bodyFactory()
  const generated = Array.from({ length: 1000 }, next)
  let g = 0
  const lines = [
    '| payload | storehook decoded document /s | µs per notification | Apple\'s library, verify + decode all its JWS /s |',
    '|---|---|---|---|'
  ]
  for (const [name, body, c] of [
    ['real Production TEST (no nested JWS)', real.body, real],
    ['signed SUBSCRIBED with transaction and renewal', subscribed.body, subscribed],
    ['ingest bench bodies, 4-12 KB, transaction and renewal', null, null]
  ] as const) {
    const once = body === null ? () => decodedDocument(generated[g++ % generated.length]!, FACTS) : () => decodedDocument(body, FACTS)
    const ours = median(await Promise.all([0, 1, 2].map(async () => rate(1, once))))
    let apple = '-'
    // appleDecodes builds its verifier on each call, which costs little beside
    // the chain Apple's verifier checks again on every call anyway.
    if (c !== null) apple = String(Math.round(await rate(2, () => appleDecodes(c))))
    lines.push(`| ${name} | ${Math.round(ours)} | ${(1e6 / ours).toFixed(1)} | ${apple} |`)
  }
  return lines
}

// CPU seconds a process has used (user + system, all its threads), from the
// kernel: on a machine shared with other work, the cost per notification is
// steadier than the request rate (Linux; USER_HZ is 100 there).
function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function ingest (): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-bench-decoded-'))
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
  const url = `http://127.0.0.1:${target.port}/hook`
  const start = async (payload: 'apple' | 'decoded') => {
    const config = join(dir, `${payload}.json`)
    writeFileSync(config, JSON.stringify({ targets: [{ name: 'backend', url, payload, signingSecret: SECRET }] }))
    return await startStorehook({ DATABASE_PATH: join(dir, `${payload}.db`), STOREHOOK_CONFIG: config, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' })
  }
  const contenders = { apple: await start('apple'), decoded: await start('decoded') }
  const next = bodyFactory()
  const results: Record<string, LoadResult[]> = { apple: [], decoded: [] }
  const forwarded: Record<string, number> = { apple: 0, decoded: 0 }
  const cpu: Record<string, number> = { apple: 0, decoded: 0 }
  try {
    for (const name of ['apple', 'decoded'] as const) {
      contenders[name === 'apple' ? 'decoded' : 'apple'].process.kill('SIGSTOP')
      await load(`http://127.0.0.1:${contenders[name].port}/apple/notifications`, next, { connections: 50, durationS: 1 })
      contenders[name === 'apple' ? 'decoded' : 'apple'].process.kill('SIGCONT')
    }
    for (let i = 0; i < rounds; i++) {
      for (const name of ['apple', 'decoded'] as const) {
        const other = contenders[name === 'apple' ? 'decoded' : 'apple']
        other.process.kill('SIGSTOP')
        const before = await countAtTarget(target)
        const cpuBefore = cpuSeconds(contenders[name].process.pid!)
        results[name]!.push(await load(`http://127.0.0.1:${contenders[name].port}/apple/notifications`, next, { connections: 50, durationS }))
        forwarded[name]! += (await countAtTarget(target)) - before
        cpu[name]! += cpuSeconds(contenders[name].process.pid!) - cpuBefore
        other.process.kill('SIGCONT')
      }
    }
  } finally {
    for (const c of Object.values(contenders)) await c.stop()
    await target.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const rps = (name: string): number => median(results[name]!.map((r) => r.rps))
  const p99 = (name: string): number => median(results[name]!.map((r) => r.p99))
  const received = (name: string): number => results[name]!.reduce((n, r) => n + r.requests, 0)
  return [
    '| target payload | ingest req/s (median) | p99 ms | forwarded during the rounds / received | storehook CPU µs per notification (all threads, ÷ mean of received and forwarded) |',
    '|---|---|---|---|---|',
    ...['apple', 'decoded'].map((n) => `| ${n} | ${Math.round(rps(n))} | ${p99(n)} | ${forwarded[n]} / ${received(n)} | ${Math.round(cpu[n]! * 1e6 / Math.max(1, (received(n) + forwarded[n]!) / 2))} |`),
    '',
    `decoded / apple ingest: ${(rps('decoded') / rps('apple')).toFixed(2)}x (median); round by round: ${results.apple!.map((a, i) => (results.decoded![i]!.rps / a.rps).toFixed(2)).join(', ')}`
  ]
}

console.log(`Measured on ${machine()}, load average ${loadavg()[0]!.toFixed(1)} at start; ${rounds} alternating rounds of ${durationS} s, 50 connections, medians.`, '\n')
console.log((await decodeCost()).join('\n'), '\n')
console.log((await ingest()).join('\n'))
