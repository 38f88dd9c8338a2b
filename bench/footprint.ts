// `npm run bench:footprint`: what one accepted notification costs storehook in
// disk writes, database size, CPU and memory (issue 15's "now" and "after"
// figures come from this one bench, so they compare). Storehook (the built
// dist/, VERIFY_SIGNATURES=off as in the ingest bench) gets a steady load of
// Apple-shaped V2 bodies (bench/bodies.ts appleShapedBodies: the chain in the
// header and again inside the nested transaction and renewal) with one live
// target; the figures are deltas of the kernel's own counters for the
// storehook process over the run, divided by the notifications forwarded.
// Absolute, not ratios to a floor: what is measured is storehook's own cost
// per notification, which does not depend on how fast the machine answers.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { appleShapedBodies } from './bodies.ts'
import { countAtTarget, dbMb, load, ROOT, startChild, startDurableFloor, startStorehook, type LoadResult } from './lib.ts'
import { describeMachine, writeSection } from './report.ts'

export interface FootprintOptions {
  durationS?: number
  connections?: number
  chain?: 'generated' | 'apple'
  bodySize?: number
  // For trying a setting before making it the default: flags before
  // bin/storehook.js, and variables added to storehook's environment.
  nodeArgs?: string[]
  env?: Record<string, string>
  // NODE_OPTIONS for storehook: by default fly.toml's, so the figures are
  // those of the deployed configuration (V8's heap sized for 256 MB); ''
  // measures Node's own sizing for this machine's memory.
  nodeOptions?: string
  // 'floor' runs bench/servers/durable.ts instead of storehook, under the
  // same load, NODE_OPTIONS and counters: the least any relay keeping the
  // contract costs here (raw bodies, no logs, no leases), the figure that
  // tells storehook's own cost from what the machine and the contract bind.
  server?: 'storehook' | 'floor'
  // Requests per second in all, instead of as fast as storehook answers: CPU
  // per notification depends on the rate (a group commit shares its cost
  // among the notifications it holds), so two settings compare at one rate.
  rate?: number
}

export interface FootprintResult {
  durationS: number
  connections: number
  chain: 'generated' | 'apple'
  chainDerBytes: number
  bodyBytes: number
  load: LoadResult
  // Rows of `notifications` at the end: what storehook accepted.
  accepted: number
  // 2xx answers autocannon read before its deadline (a lower bound).
  answered: number
  forwarded: number
  storedRows: number
  // Including tailBytes: what the bench's own checkpoint of the WAL's last
  // frames wrote to the database file.
  writeBytes: number
  tailBytes: number
  cancelledWriteBytes: number
  // write(2) calls' bytes, whether or not they reached the disk: with
  // write_bytes, tells the WAL's writes from the page cache's writeback.
  wcharBytes: number
  cpuMs: number
  // cpuMs by thread: the HTTP (main) thread, the outbox writer, the rest.
  threads: { main: number; writer: number; rest: number }
  // Frames appended to the WAL over the run, and their bytes with headers:
  // what a WAL shipper such as Litestream copies off the machine.
  walFrames: number
  walBytes: number
  // The database's bytes by table and index (SQLite's dbstat), largest first.
  byObject: Array<{ name: string; bytes: number }>
  // How the bodies are stored: rows and mean stored bytes per encoding.
  encodings: Array<{ encoding: string; n: number; bytes: number }>
  // The database after a TRUNCATE checkpoint: the files, and the pages in use.
  dbFileBytes: number
  dbUsedBytes: number
  vmHwmMb: number
  vmRssMb: number
  secondsToForwardAll: number
  loadAverageAtEnd: number[]
  // NODE_OPTIONS storehook ran with (fly.toml's unless BENCH_NODE_OPTIONS says otherwise).
  nodeOptions: string
}

// fly.toml's NODE_OPTIONS (one quoted string on one line: see the file).
export function flyNodeOptions (): string {
  return /^\s*NODE_OPTIONS\s*=\s*"([^"]*)"/m.exec(readFileSync(join(ROOT, 'fly.toml'), 'utf8'))?.[1] ?? ''
}

interface Counters { writeBytes: number; cancelledWriteBytes: number; wchar: number; cpuTicks: number }

// /proc/PID/io and /proc/PID/stat of a process cover all its threads, so the
// writer thread's writes and CPU are counted with the HTTP thread's.
function counters (pid: number): Counters {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? Number.NaN)
  // The command name (field 2) may hold spaces: count the fields after its ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 (1-based), 12 and 13 after the ')'.
  return { writeBytes: field('write_bytes'), cancelledWriteBytes: field('cancelled_write_bytes'), wchar: field('wchar'), cpuTicks: Number(rest[11]) + Number(rest[12]) }
}

// CPU ticks of each thread of the process. Node names none of its threads
// (all are "node"), so they are told apart by what they do: the main thread's
// id is the process id; the busiest of the others is the outbox writer; the
// rest are libuv's pool and V8's garbage-collector and compiler threads.
function threadTicks (pid: number): Map<number, number> {
  const ticks = new Map<number, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks.set(Number(tid), Number(rest[11]) + Number(rest[12]))
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ticks
}

function threadSplit (pid: number, before: Map<number, number>, after: Map<number, number>): { main: number; writer: number; rest: number } {
  const delta = [...after].map(([tid, t]) => [tid, t - (before.get(tid) ?? 0)] as const)
  const main = delta.find(([tid]) => tid === pid)?.[1] ?? 0
  const others = delta.filter(([tid]) => tid !== pid).map(([, t]) => t).sort((a, b) => b - a)
  return { main: main * TICK_MS, writer: (others[0] ?? 0) * TICK_MS, rest: others.slice(1).reduce((a, b) => a + b, 0) * TICK_MS }
}

// This process's write_bytes around a checkpoint of what the WAL still holds.
function checkpointTail (dbPath: string): number {
  const own = (): number => Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? Number.NaN)
  const before = own()
  const db = new Database(dbPath)
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } finally {
    db.close()
  }
  return own() - before
}

function memoryMb (pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN)
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 }
}

// What Litestream (or any WAL shipper) has to copy: every frame appended to
// the WAL, each a page and a 24-byte frame header. Counted from the WAL
// index's header at the start of the -shm file (SQLite's wal.c: mxFrame, the
// last valid frame, at byte 16; the page size at 14; the salts, which change
// whenever the WAL restarts from its first frame, at 32), read every
// millisecond. SQLite writes two copies of the header; a read where they
// differ was torn and is skipped. Frames appended after the last read before
// a restart are missed, so this is a slight undercount (at most one poll's
// worth of frames per restart, about every 1,000 frames).
function watchWal (dbPath: string): { stop: () => { frames: number; bytes: number } } {
  let fd: number | null = null
  let frames = 0
  let pageSize = 4096
  let last: { salt: string; mx: number } | null = null
  const header = Buffer.alloc(96)
  const poll = (): void => {
    try {
      fd ??= openSync(`${dbPath}-shm`, 'r')
      if (readSync(fd, header, 0, 96, 0) < 96 || !header.subarray(0, 48).equals(header.subarray(48, 96))) return
    } catch {
      return
    }
    const mx = header.readUInt32LE(16)
    const salt = header.subarray(32, 40).toString('hex')
    pageSize = header.readUInt16LE(14) || 65536
    if (last === null) {
      // The frames already there when the watch began are not the run's.
      last = { salt, mx }
      return
    }
    frames += salt === last.salt ? Math.max(0, mx - last.mx) : mx
    last = { salt, mx }
  }
  const timer = setInterval(poll, 1)
  poll()
  return {
    stop () {
      clearInterval(timer)
      poll()
      if (fd !== null) closeSync(fd)
      return { frames, bytes: frames * (pageSize + 24) }
    }
  }
}

// USER_HZ: 100 on every Linux that Node supports (getconf CLK_TCK).
const TICK_MS = 10
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export async function runFootprintBench (opts: FootprintOptions = {}): Promise<FootprintResult> {
  const durationS = opts.durationS ?? 20
  const connections = opts.connections ?? 50
  const bodies = await appleShapedBodies(opts.chain ?? 'generated', opts.bodySize ?? 12_600)
  const nodeOptions = opts.nodeOptions ?? flyNodeOptions()
  const dir = mkdtempSync(join(tmpdir(), 'storehook-footprint-'))
  const dbPath = join(dir, 'footprint.db')
  const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], {}, true)
  const hook = `http://127.0.0.1:${target.port}/hook`
  const storehook = opts.server === 'floor'
    ? await startDurableFloor(dbPath, hook, { NODE_OPTIONS: nodeOptions, ...opts.env })
    : await startStorehook({
      DATABASE_PATH: dbPath,
      FORWARD_TARGETS: hook,
      VERIFY_SIGNATURES: 'off',
      LOG_LEVEL: 'info',
      NODE_OPTIONS: nodeOptions,
      ...opts.env
    }, opts.nodeArgs)
  try {
    const pid = storehook.process.pid!
    // No warm-up: the run's figures include the JIT's first seconds, as a
    // deployment's first minutes would; over 20 s they are a small share.
    const before = counters(pid)
    const threadsBefore = threadTicks(pid)
    const wal = watchWal(dbPath)
    const forwardedBefore = await countAtTarget(target)
    const result = await load(`http://127.0.0.1:${storehook.port}/apple/notifications`, bodies.next, { connections, durationS, ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}) })
    const loadEnded = performance.now()
    // autocannon counts the answers it read before its deadline; requests in
    // flight then are still stored and forwarded, so its count is a lower bound
    // and the rows of `notifications` (read below) are what was accepted.
    const answered = result.requests - result.non2xx
    // Every accepted notification forwarded, then the writes stopped (the
    // attempt rows are committed after the target's answer): only then is the
    // cost of a notification complete. The target's count must reach
    // autocannon's and then hold still for a second.
    let forwarded = 0
    let lastChange = Date.now()
    for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(200)) {
      const n = (await countAtTarget(target)) - forwardedBefore
      if (n !== forwarded) { forwarded = n; lastChange = Date.now() }
      if (forwarded >= answered && Date.now() - lastChange >= 1000) break
    }
    // Less the second of stillness that proved it.
    const secondsToForwardAll = Math.max(0, (performance.now() - loadEnded) / 1000 - 1)
    let settled = counters(pid)
    for (let i = 0; i < 20; i++) {
      await sleep(500)
      const now = counters(pid)
      if (now.writeBytes === settled.writeBytes) break
      settled = now
    }
    const after = counters(pid)
    // The WAL written since the last checkpoint has not reached the database
    // file yet: it will, at the next checkpoint, after the count stopped. So
    // the bench checkpoints it now and counts those writes too, or a longer
    // checkpoint interval would look cheaper by what it merely defers.
    const tailBytes = checkpointTail(dbPath)
    const threads = threadSplit(pid, threadsBefore, threadTicks(pid))
    const walFrames = wal.stop()
    const memory = memoryMb(pid)
    const loadAverageAtEnd = loadavg()
    await storehook.stop()
    // After storehook exits, so nothing else holds the file: fold the WAL in
    // and count what the notifications take at rest.
    const db = new Database(dbPath)
    let storedRows: number
    let dbUsedBytes: number
    let byObject: Array<{ name: string; bytes: number }>
    let encodings: Array<{ encoding: string; n: number; bytes: number }>
    try {
      db.pragma('wal_checkpoint(TRUNCATE)')
      storedRows = (db.prepare('SELECT count(*) AS n FROM notifications').get() as { n: number }).n
      const pragma = (name: string): number => db.pragma(name, { simple: true }) as number
      dbUsedBytes = (pragma('page_count') - pragma('freelist_count')) * pragma('page_size')
      // Where those bytes are: each table and index, by the pages it holds.
      // A database from before bodies were compressed has no body_encoding: all raw.
      const hasEncoding = (db.prepare("SELECT count(*) AS n FROM pragma_table_info('notifications') WHERE name = 'body_encoding'").get() as { n: number }).n > 0
      encodings = db.prepare(`SELECT ${hasEncoding ? 'body_encoding' : "'raw'"} AS encoding, count(*) AS n, avg(length(body)) AS bytes FROM notifications GROUP BY 1 ORDER BY 2 DESC`).all() as Array<{ encoding: string; n: number; bytes: number }>
      byObject = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as Array<{ name: string; bytes: number }>
    } finally {
      db.close()
    }
    const dbFileBytes = dbMb(dbPath) * 2 ** 20
    return {
      durationS,
      connections,
      chain: bodies.chain,
      chainDerBytes: bodies.chainDerBytes,
      bodyBytes: bodies.size,
      load: result,
      accepted: storedRows,
      answered,
      forwarded,
      storedRows,
      writeBytes: after.writeBytes - before.writeBytes + tailBytes,
      tailBytes,
      cancelledWriteBytes: after.cancelledWriteBytes - before.cancelledWriteBytes,
      wcharBytes: after.wchar - before.wchar,
      cpuMs: (after.cpuTicks - before.cpuTicks) * TICK_MS,
      threads,
      byObject,
      encodings,
      walFrames: walFrames.frames,
      walBytes: walFrames.bytes,
      dbFileBytes,
      dbUsedBytes,
      vmHwmMb: memory.hwm,
      vmRssMb: memory.rss,
      secondsToForwardAll,
      loadAverageAtEnd,
      nodeOptions
    }
  } finally {
    await storehook.stop()
    await target.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const kb = (bytes: number): string => `${(bytes / 1000).toFixed(1)} KB`
const x = (r: number): string => `${r.toFixed(2)}x`

export function footprintTable (r: FootprintResult, machine: string, quick: boolean, floor?: FootprintResult): string[] {
  // One row: storehook's figure and ratio to the body, then the floor's.
  const row = (label: string, f: (q: FootprintResult) => string, ratio?: (q: FootprintResult) => number): string => {
    const cells = (q: FootprintResult): string => `${f(q)} | ${ratio === undefined ? '' : x(ratio(q))}`
    return `| ${label} | ${cells(r)} |${floor === undefined ? '' : ` ${cells(floor)} |`}`
  }
  const perBody = (bytes: (q: FootprintResult) => number) => (q: FootprintResult): number => bytes(q) / q.bodyBytes
  const written = (q: FootprintResult): number => q.writeBytes / q.forwarded
  const wchar = (q: FootprintResult): number => q.wcharBytes / q.forwarded
  const wal = (q: FootprintResult): number => q.walBytes / q.forwarded
  const perStored = (q: FootprintResult): number => q.dbFileBytes / q.storedRows
  const usedPerStored = (q: FootprintResult): number => q.dbUsedBytes / q.storedRows
  const ms = (v: number): string => `${v.toFixed(3)} ms`
  return [
    '### Footprint per notification (`npm run bench:footprint`)', '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine}; load average at the end ${r.loadAverageAtEnd.map((l) => l.toFixed(1)).join(' / ')}.${quick ? ' **Quick smoke run (BENCH_QUICK=1): figures are indicative only.**' : ''}`,
    `${r.durationS} s of load at ${r.connections} connections, one live target, VERIFY_SIGNATURES=off, ${r.nodeOptions === '' ? 'no NODE_OPTIONS (V8 sizes its heap from this machine\'s memory)' : `NODE_OPTIONS="${r.nodeOptions}" (fly.toml's)`}: ${r.accepted.toLocaleString('en')} notifications accepted and stored (autocannon read ${r.answered.toLocaleString('en')} of the answers before its deadline: ${Math.round(r.load.rps)} req/s, p99 ${r.load.p99} ms, ${r.load.non2xx + r.load.errors} refused or failed), ${r.forwarded.toLocaleString('en')} forwarded (the last ${r.secondsToForwardAll.toFixed(1)} s after the load ended)${r.forwarded === r.accepted ? '' : ': **not every accepted notification was forwarded, or some twice**'}.`,
    ...(floor === undefined ? [] : [`The durable floor (bench/servers/durable.ts: raw bodies, no logs, no leases or claims; the least any relay keeping the contract does) then ran under the same load and NODE_OPTIONS: ${floor.accepted.toLocaleString('en')} accepted, ${floor.forwarded.toLocaleString('en')} forwarded, ${Math.round(floor.load.rps)} req/s.`]),
    `Every body is ${r.bodyBytes.toLocaleString('en')} bytes: an Apple-shaped V2 JWS whose header carries a three-certificate x5c chain (${r.chain === 'apple' ? 'Apple\'s real production chain' : 'generated by test/helpers/apple-chain.ts'}, ${r.chainDerBytes.toLocaleString('en')} bytes of DER), and whose payload carries a signedTransactionInfo and a signedRenewalInfo that each carry the chain again; a distinct notificationUUID in each. KB = 1,000 bytes.`,
    `Disk and CPU are the process's own counters (/proc/PID/io write_bytes, /proc/PID/stat utime+stime; the writer thread is in the same process), from the load's start until every accepted notification was forwarded and the writes stopped, divided by the notifications forwarded; the disk figure adds what the bench's own checkpoint of the WAL's last frames then wrote (${kb(r.tailBytes / r.forwarded)} a notification), which the next checkpoint would have written anyway. The database is measured after the process stopped and a TRUNCATE checkpoint, schema and indexes included, divided by the rows of \`notifications\`.`, '',
    `| measure | storehook | ratio to the body |${floor === undefined ? '' : ' durable floor | ratio to the body |'}`,
    `|---|---|---|${floor === undefined ? '' : '---|---|'}`,
    row('body sent (mean)', (q) => kb(q.bodyBytes), () => 1),
    row('bytes written to disk per accepted notification', (q) => kb(written(q)), perBody(written)),
    ...(r.cancelledWriteBytes > 0 ? [row('of which cancelled before writeback (cancelled_write_bytes)', (q) => kb(q.cancelledWriteBytes / q.forwarded), perBody((q) => q.cancelledWriteBytes / q.forwarded))] : []),
    row('bytes passed to write() per accepted notification (reached the disk or not)', (q) => kb(wchar(q)), perBody(wchar)),
    row('WAL bytes per accepted notification (frames appended: what Litestream ships before its own LZ4)', (q) => kb(wal(q)), perBody(wal)),
    row('database bytes per stored notification (files after a checkpoint)', (q) => kb(perStored(q)), perBody(perStored)),
    row('database bytes per stored notification (pages in use)', (q) => kb(usedPerStored(q)), perBody(usedPerStored)),
    row('CPU per forwarded notification (utime+stime)', (q) => ms(q.cpuMs / q.forwarded)),
    row('of which the HTTP (main) thread / the outbox writer thread / the rest (GC, libuv)', (q) => `${(q.threads.main / q.forwarded).toFixed(3)} / ${(q.threads.writer / q.forwarded).toFixed(3)} / ${(q.threads.rest / q.forwarded).toFixed(3)} ms`),
    row('peak resident memory (VmHWM)', (q) => `${q.vmHwmMb.toFixed(0)} MB`),
    row('resident memory at the end (VmRSS)', (q) => `${q.vmRssMb.toFixed(0)} MB`),
    '', `Where storehook's database bytes per stored notification are (dbstat): ${r.byObject.filter((o) => o.bytes / r.storedRows >= 50).map((o) => `${o.name} ${kb(o.bytes / r.storedRows)}`).join(', ')}; each object under 50 bytes left out. Bodies as stored: ${r.encodings.map((e) => `${e.n.toLocaleString('en')} ${e.encoding} of ${kb(e.bytes)} on average`).join(', ')}.`
  ]
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.env.BENCH_QUICK === '1'
  const machine = describeMachine()
  // BENCH_NODE_ARGS="--max-semi-space-size=1", BENCH_ENV="NAME=value,..."
  // and BENCH_NODE_OPTIONS (instead of fly.toml's; '' for none) try a
  // setting, BENCH_RATE=300 holds the load at 300 requests/s: such a run is
  // not the default's figure, so it is printed and not written to
  // BENCHMARKS.md.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  const env = Object.fromEntries((process.env.BENCH_ENV ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  const rate = Number(process.env.BENCH_RATE ?? 0)
  const nodeOptions = process.env.BENCH_NODE_OPTIONS
  const trial = nodeArgs.length > 0 || Object.keys(env).length > 0 || rate > 0 || nodeOptions !== undefined
  const options: FootprintOptions = {
    durationS: Number(process.env.BENCH_SECONDS ?? (quick ? 3 : 20)),
    connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
    chain: process.env.BENCH_CHAIN === 'apple' ? 'apple' : 'generated',
    nodeArgs,
    env,
    ...(rate > 0 ? { rate } : {}),
    ...(nodeOptions !== undefined ? { nodeOptions } : {})
  }
  const r = await runFootprintBench(options)
  // The floor under the same load, unless BENCH_FLOOR=0 (a quicker trial).
  const floor = process.env.BENCH_FLOOR === '0' ? undefined : await runFootprintBench({ ...options, server: 'floor' })
  const lines = footprintTable(r, machine, quick, floor)
  console.log(lines.join('\n'))
  if (trial) {
    console.log(`\nTrial (node ${nodeArgs.join(' ')}; env ${JSON.stringify(env)}; NODE_OPTIONS "${r.nodeOptions}"; rate ${rate > 0 ? rate : 'open'}): not written to BENCHMARKS.md.`)
  } else {
    writeSection('footprint', lines)
    console.log('\nWritten to BENCHMARKS.md.')
  }
}
