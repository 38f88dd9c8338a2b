// Backfill throughput: `storehook backfill` (the built CLI, a child process)
// against the local mock App Store Server API, which serves N signed
// notifications 20 per page. Every payload goes through the same ingest as the
// route (decode, ES256 + chain verification under enforce, durable enqueue).
// Not part of `npm run bench`; run: node --import tsx bench/backfill.ts
// (BACKFILL_N=2000 by default; `npm run build` first).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ISSUER_ID, KEY_ID, KEY_PATH, startAppleApi } from '../test/helpers/apple-api.ts'
import { makeChain, makeRoot, notificationPayload, signNotification } from '../test/helpers/apple-chain.ts'
import { machine, ROOT } from './lib.ts'

const n = Number(process.env.BACKFILL_N ?? 2000)
const dir = mkdtempSync(join(tmpdir(), 'storehook-bench-backfill-'))
const root = makeRoot()
writeFileSync(join(dir, 'root.pem'), root.pem)
const chain = makeChain({ root })
const api = await startAppleApi()
const base = Date.now() - 3_600_000
for (let i = 0; i < n; i++) {
  api.add(signNotification(chain, { ...notificationPayload(), notificationType: 'DID_RENEW' }), { signedDate: base + i })
}

async function run (verify: string, db: string): Promise<{ seconds: number; summary: string }> {
  const started = process.hrtime.bigint()
  const child = spawn(process.execPath, ['bin/storehook.js', 'backfill', '--since', '2h', '--environment', 'Sandbox'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_PATH: join(dir, db),
      VERIFY_SIGNATURES: verify,
      APPLE_ROOT_CERTS: join(dir, 'root.pem'),
      APPLE_ISSUER_ID: ISSUER_ID,
      APPLE_KEY_ID: KEY_ID,
      APPLE_PRIVATE_KEY_PATH: KEY_PATH,
      APPLE_BUNDLE_ID: 'com.example',
      APPLE_API_BASE_URL: api.url
    },
    stdio: ['ignore', 'pipe', 'ignore']
  })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  const [code] = await once(child, 'exit') as [number]
  if (code !== 0) throw new Error(`backfill exited with ${code}: ${out}`)
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, summary: out.trim().split('\n').at(-1)! }
}

try {
  console.log(`storehook backfill of ${n} notifications (${Math.ceil(n / 20)} pages of 20) from the mock App Store Server API, on ${machine()}`)
  console.log('Wall time of the whole CLI process (start, migrate, every page, exit).\n')
  console.log('| run | seconds | notifications/s | summary |')
  console.log('|---|---|---|---|')
  for (const [name, verify, db] of [['enforce, fresh database', 'enforce', 'a.db'], ['enforce, same again (all already had)', 'enforce', 'a.db'], ['off, fresh database', 'off', 'b.db']] as const) {
    const r = await run(verify, db)
    console.log(`| ${name} | ${r.seconds.toFixed(2)} | ${Math.round(n / r.seconds)} | ${r.summary} |`)
  }
} finally {
  await api.close()
  rmSync(dir, { recursive: true, force: true })
}
