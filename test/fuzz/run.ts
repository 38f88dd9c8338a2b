// Posts generated malformed bodies to the real program (a child process,
// VERIFY_SIGNATURES=enforce, a live target) and reports what came back.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { tempDir } from '../helpers/app.ts'
import { spawnServer } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'
import { generator, makeMaterial, seedFromEnv, SHARED_SECRET } from './generate.ts'

const BODY_LIMIT = 1_048_576
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

export async function fuzz (t: Test, count: number): Promise<void> {
  const seed = seedFromEnv(process.env)
  t.comment(`fuzz seed ${seed} (FUZZ_SEED=${seed} reproduces), ${count} bodies`)
  const dir = tempDir(t)
  const m = makeMaterial()
  writeFileSync(join(dir, 'root.pem'), m.trusted.root.pem)
  const target = await startTarget()
  t.teardown(target.close)
  const server = await spawnServer({
    DATABASE_PATH: join(dir, 'fuzz.db'),
    VERIFY_SIGNATURES: 'enforce',
    APPLE_ROOT_CERTS: join(dir, 'root.pem'),
    APPLE_SHARED_SECRET: SHARED_SECRET,
    FORWARD_TARGETS: target.url,
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    LOG_LEVEL: 'info'
  })
  t.teardown(() => server.kill('SIGTERM'))
  const next = generator(seed, m)
  const statuses = new Map<string, number>()
  const bad: string[] = []
  let rssAfterFirst = 0
  let i = 0
  const worker = async (): Promise<void> => {
    while (i < count) {
      const n = i++
      const { kind, body } = next(n)
      let status: number | string
      try {
        const res = await fetch(`${server.url}/apple/notifications`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
        await res.arrayBuffer()
        status = res.status
      } catch (err) {
        // Over the body limit, the server answers 413 at once and closes the
        // connection while the client is still sending: the client may only
        // see the reset. That is a refusal, not a failure; anything else is.
        status = Buffer.byteLength(body) > BODY_LIMIT ? 'reset after an early 413 (over the limit)' : `network error ${(err as Error).message}`
      }
      const key = `${kind}: ${status}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      if (typeof status === 'number' ? status >= 500 || status < 400 : !status.startsWith('reset after an early 413')) {
        bad.push(`#${n} (${kind}) answered ${status}; reproduce with FUZZ_SEED=${seed}, body index ${n}`)
      }
      if (n === 999) rssAfterFirst = rssMb(server.child.pid!)
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  const rssEnd = rssMb(server.child.pid!)
  t.same(bad.slice(0, 20), [], `every body refused with a 4xx: never accepted, never a 5xx (seed ${seed})`)
  t.equal(server.child.exitCode, null, 'the server never crashed')
  t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'and still answers')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(target.received.length, 0, 'the target received nothing')
  if (count > 1000) {
    // Generous: the heap may grow into its working size, not with the input count.
    t.ok(rssEnd < rssAfterFirst * 1.5 + 40, `RSS flat: ${rssAfterFirst.toFixed(0)} MB after 1,000 bodies, ${rssEnd.toFixed(0)} MB after ${count}`)
  }
  t.comment([...statuses].sort().map(([k, v]) => `${k} x${v}`).join('; '))
}
