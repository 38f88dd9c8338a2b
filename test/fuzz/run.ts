// Posts generated bodies to the real program (a child process, a live target)
// and checks, for every body, what the project promises whatever arrives:
// - never a 5xx, never a crash, never a hang (a per-request deadline);
// - every 4xx is JSON {error, code};
// - under enforce, only authentic bodies (signed by the trusted test chain,
//   one reading) are accepted: the target and the database hold nothing else;
// - every body accepted is forwarded byte for byte (SHA-256 of what the target
//   got against what was sent) and its admin API detail and dashboard page
//   answer 200.
// A second pass runs with VERIFY_SIGNATURES=off, where structurally odd but
// well-formed notifications are accepted, so that the last two hold for them.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Test } from 'tap'
import { openDatabase } from '../../src/db/client.ts'
import type { BodyEncoding } from '../../src/db/vocabulary.ts'
import { loadBody } from '../../src/outbox/bodies.ts'
import { ADMIN_TOKEN } from '../helpers/admin.ts'
import { tempDir, until } from '../helpers/app.ts'
import { login } from '../helpers/dashboard.ts'
import { spawnServer } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'
import { BODY_LIMIT, generator, makeMaterial, seedFromEnv, SHARED_SECRET, type Family, type Fuzzed } from './generate.ts'

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

// Generous for a busy 2-core machine: the slowest legitimate request (a 1 MB
// body, or the dashboard page of one) takes well under a second there.
const DEADLINE_MS = Number(process.env.FUZZ_DEADLINE_MS ?? 15_000)

export interface FuzzOptions {
  count: number
  mode: 'enforce' | 'off'
  families: readonly Family[]
  // The share of structural fragments sized up to the body limit (see structural.ts).
  big: number
}

interface Accepted { n: number; kind: string; id: string; sha: string; authentic: boolean; ambiguous: boolean }

export async function fuzz (t: Test, { count, mode, families, big }: FuzzOptions): Promise<void> {
  const seed = seedFromEnv(process.env)
  t.comment(`fuzz seed ${seed} (FUZZ_SEED=${seed} reproduces), ${count} bodies, VERIFY_SIGNATURES=${mode}, ${families.join(' + ')}, ${big * 100}% near the size limit`)
  const dir = tempDir(t)
  const m = makeMaterial()
  writeFileSync(join(dir, 'root.pem'), m.trusted.root.pem)
  const target = await startTarget()
  t.teardown(target.close)
  const dbPath = join(dir, 'fuzz.db')
  const server = await spawnServer({
    DATABASE_PATH: dbPath,
    VERIFY_SIGNATURES: mode,
    APPLE_ROOT_CERTS: join(dir, 'root.pem'),
    APPLE_SHARED_SECRET: SHARED_SECRET,
    FORWARD_TARGETS: target.url,
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    ADMIN_TOKEN,
    LOG_LEVEL: 'info'
  })
  t.teardown(() => server.kill('SIGTERM'))
  const session = await login(server.url)
  const next = generator(seed, m, families, big)
  const statuses = new Map<string, number>()
  const bad: string[] = []
  // Accepted under enforce although a first-wins reader would see an
  // unverified part (a duplicated key): reported apart, to say which kind.
  const ambiguous: string[] = []
  const accepted: Accepted[] = []
  const failuresDir = join(tmpdir(), 'storehook-fuzz-failures')
  const fail = (n: number, f: Fuzzed, what: string): void => {
    // The exact bytes, kept outside the test's temp folder: the generator
    // reproduces the shape from the seed, but keys and UUIDs are fresh.
    mkdirSync(failuresDir, { recursive: true })
    const file = join(failuresDir, `${seed}-${mode}-${n}.body`)
    writeFileSync(file, f.body)
    bad.push(`#${n} (${f.kind}, ${f.body.length} bytes) ${what}; FUZZ_SEED=${seed} VERIFY_SIGNATURES=${mode} body index ${n}, bytes in ${file}`)
  }
  const get = async (path: string, headers: Record<string, string>): Promise<number | string> => {
    try {
      const res = await fetch(server.url + path, { headers, redirect: 'manual', signal: AbortSignal.timeout(DEADLINE_MS) })
      await res.arrayBuffer()
      return res.status
    } catch (err) {
      return `${(err as Error).name}: ${(err as Error).message}`
    }
  }

  // The slowest answers, in the summary: a body close to the deadline shows there first.
  const took: Array<[number, string]> = []
  let rssAfterFirst = 0
  let i = 0
  const worker = async (): Promise<void> => {
    while (i < count) {
      const n = i++
      const f = next(n)
      const started = Date.now()
      let status: number | string
      let text = ''
      try {
        const res = await fetch(`${server.url}/apple/notifications`, { method: 'POST', body: f.body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(DEADLINE_MS) })
        text = await res.text()
        status = res.status
      } catch (err) {
        // Over the body limit, the server answers 413 at once and closes the
        // connection while the client is still sending: the client may only
        // see the reset. That is a refusal, not a failure; anything else is.
        status = f.body.length > BODY_LIMIT && (err as Error).name !== 'TimeoutError' ? 'reset after an early 413' : `${(err as Error).name}: ${(err as Error).message}`
      }
      const posted = Date.now()
      took.push([posted - started, `#${n} (${f.kind}, ${f.body.length} bytes) answered in ${posted - started} ms`])
      const key = `${f.kind}: ${status}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      if (n === 999) rssAfterFirst = rssMb(server.child.pid!)
      if (typeof status === 'string') {
        if (status !== 'reset after an early 413') fail(n, f, `got no answer (${status})`)
        continue
      }
      let json: any = null
      try { json = JSON.parse(text) } catch {}
      if (status >= 400 && status < 500) {
        if (typeof json?.error !== 'string' || typeof json?.code !== 'string') fail(n, f, `answered ${status} without a JSON {error, code}: ${text.slice(0, 100)}`)
        continue
      }
      if (status !== 200 || typeof json?.id !== 'string') { fail(n, f, `answered ${status}: ${text.slice(0, 100)}`); continue }
      if (mode === 'enforce' && f.authentic !== true) {
        if (f.ambiguous === true) ambiguous.push(`#${n} (${f.kind}) accepted as ${json.id as string}`)
        else fail(n, f, 'accepted under enforce, though not signed by the trusted chain')
      }
      if (json.duplicate === true) continue
      accepted.push({ n, kind: f.kind, id: json.id, sha: sha256(f.body), authentic: f.authentic === true, ambiguous: f.ambiguous === true })
      const apiStatus = await get(`/admin/api/notifications/${json.id as string}`, { authorization: `Bearer ${ADMIN_TOKEN}` })
      if (apiStatus !== 200) fail(n, f, `accepted, but GET /admin/api/notifications/${json.id as string} answered ${apiStatus}`)
      const pageStatus = await get(`/admin/notifications/${json.id as string}`, { cookie: session.cookie })
      if (pageStatus !== 200) fail(n, f, `accepted, but the dashboard page /admin/notifications/${json.id as string} answered ${pageStatus}`)
      took.push([Date.now() - posted, `#${n} (${f.kind}, ${f.body.length} bytes) viewed in ${Date.now() - posted} ms`])
    }
  }
  const t0 = Date.now()
  await Promise.all(Array.from({ length: 4 }, worker))
  t.comment(`posted in ${Date.now() - t0} ms; slowest: ${took.sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, what]) => what).join('; ')}`)
  const rssEnd = rssMb(server.child.pid!)
  t.same(bad.slice(0, 20), [], `every body answered as promised (${bad.length} did not; seed ${seed}, ${mode})`)
  t.equal(server.child.exitCode, null, 'the server never crashed')
  t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'and still answers')

  // What was stored and forwarded, from the database itself and the target:
  // the fact waited on is that no delivery is pending any more.
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  t.teardown(() => db.close())
  await until(() => (db.prepare("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'").get() as { n: number }).n === 0, 60_000, 'every delivery done')
  const byId = new Map(accepted.map((a) => [a.id, a]))
  // Bodies are stored compressed against their chain: read back as the storage reads them.
  const storage = openDatabase(dbPath, { readonly: true })
  t.teardown(() => storage.close())
  const rows = (db.prepare('SELECT id, body, body_encoding AS bodyEncoding, body_chain_id AS bodyChainId FROM notifications').all() as Array<{ id: string; body: Buffer; bodyEncoding: BodyEncoding; bodyChainId: number | null }>)
    .map((r) => ({ id: r.id, body: loadBody(storage.db, r) }))
  t.same(rows.filter((r) => byId.get(r.id)?.sha !== sha256(r.body)).map((r) => r.id), [], 'the database holds exactly the bodies accepted, byte for byte')
  t.equal(rows.length, accepted.length, `${accepted.length} accepted, ${rows.length} stored`)
  if (mode === 'enforce') {
    const unverified = rows.filter((r) => { const a = byId.get(r.id); return a === undefined || (!a.authentic && !a.ambiguous) })
    t.same(unverified.map((r) => r.id), [], 'under enforce, the database holds only authentic bodies (ambiguous ones are reported apart)')
  }
  const got = new Map<string, string[]>()
  for (const r of target.received) got.set(String(r.headers['x-storehook-notification-id']), [...got.get(String(r.headers['x-storehook-notification-id'])) ?? [], sha256(r.body)])
  t.same([...got.keys()].filter((id) => !byId.has(id)), [], 'the target received nothing that was not accepted')
  t.same(accepted.filter((a) => !(got.get(a.id) ?? []).includes(a.sha)).map((a) => `#${a.n} (${a.kind}) ${a.id}`).slice(0, 20), [],
    `every accepted body reached the target byte-identical (SHA-256): ${accepted.length} accepted, ${target.received.length} requests`)
  if (mode === 'enforce') {
    // storehook refuses a body, JWS header or payload that repeats a
    // top-level key (400 BODY_DUPLICATE_KEY), and V2 beside V1's fields (400
    // BODY_AMBIGUOUS_VERSION): no reading of an accepted body is unverified.
    t.same(ambiguous.slice(0, 10), [], `under enforce, no body with a duplicated key that hides an unverified reading is accepted (${ambiguous.length} were)`)
  }
  if (count > 1000) {
    // Generous: the heap may grow into its working size, not with the input count.
    t.ok(rssEnd < rssAfterFirst * 1.5 + 40, `RSS flat: ${rssAfterFirst.toFixed(0)} MB after 1,000 bodies, ${rssEnd.toFixed(0)} MB after ${count}`)
  }
  t.comment([...statuses].sort().map(([k, v]) => `${k} x${v}`).join('; '))
}
