// Which tables and indexes the WAL's frames belong to under the footprint
// bench's load: storehook is killed mid-load (no checkpoint at close), its
// WAL read frame by frame, and each frame's page mapped to its table or
// index with dbstat. A tool for deciding where disk writes go, not a figure
// for BENCHMARKS.md. `node --import tsx bench/wal-anatomy.ts`
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { appleShapedBodies } from './bodies.ts'
import { load, startChild, startStorehook } from './lib.ts'

const dir = mkdtempSync(join(tmpdir(), 'storehook-wal-'))
const dbPath = join(dir, 'a.db')
const bodies = await appleShapedBodies('generated', 12_600)
const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
const storehook = await startStorehook({ DATABASE_PATH: dbPath, FORWARD_TARGETS: `http://127.0.0.1:${target.port}/hook`, VERIFY_SIGNATURES: 'off', NODE_OPTIONS: '--max-semi-space-size=2 --max-old-space-size=128' })
await load(`http://127.0.0.1:${storehook.port}/apple/notifications`, bodies.next, { connections: 50, durationS: Number(process.env.BENCH_SECONDS ?? 6) })
await new Promise((resolve) => setTimeout(resolve, 1500))
storehook.process.kill('SIGKILL')
await target.stop()
const copy = join(dir, 'b.db')
copyFileSync(dbPath, copy)
copyFileSync(`${dbPath}-wal`, `${copy}-wal`)
const wal = readFileSync(`${copy}-wal`)
const pageSize = wal.readUInt32BE(8)
const salt1 = wal.readUInt32BE(16)
const frames = new Map<number, number>()
let total = 0
let commits = 0
for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
  if (wal.readUInt32BE(at + 8) !== salt1) break
  const page = wal.readUInt32BE(at)
  frames.set(page, (frames.get(page) ?? 0) + 1)
  total++
  if (wal.readUInt32BE(at + 4) !== 0) commits++
}
const db = new Database(copy)
const owner = new Map<number, string>()
for (const r of db.prepare('SELECT name, pageno, pagetype FROM dbstat').all() as Array<{ name: string; pageno: number; pagetype: string }>) owner.set(r.pageno, r.pagetype === 'overflow' ? `${r.name} (overflow)` : r.name)
const byName = new Map<string, number>()
for (const [page, n] of frames) {
  const name = owner.get(page) ?? '(free or gone)'
  byName.set(name, (byName.get(name) ?? 0) + n)
}
db.close()
console.log(`${total} frames of ${pageSize} B in ${commits} commits (${(total / commits).toFixed(1)} frames a commit); distinct pages ${frames.size}`)
for (const [name, n] of [...byName].sort((a, b) => b[1] - a[1])) console.log(`${(n / total * 100).toFixed(1).padStart(5)}%  ${n.toString().padStart(7)}  ${name}`)
