// Shared by the benchmarks: child processes for every server (so the load
// generator never shares an event loop with what it measures) and autocannon.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface Child {
  process: ChildProcess
  port: number
  stop: () => Promise<void>
}

export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

// The durable floor (servers/durable.ts) on its own database file, forwarding
// to `targetUrl`; `env` takes parts of it away or adds the signature check.
export function startDurableFloor (databasePath: string, targetUrl: string, env: Record<string, string> = {}): Promise<Child> {
  return startChild(['--import', 'tsx', 'bench/servers/durable.ts'], { DATABASE_PATH: databasePath, TARGET_URL: targetUrl, ...env })
}

// Starts storehook on a free port and waits until /healthz answers (its
// "listening" log line is not printed below LOG_LEVEL=info).
export async function startStorehook (env: Record<string, string>, nodeArgs: string[] = []): Promise<Child> {
  const port = await freePort()
  const child = spawn(process.execPath, [...nodeArgs, 'bin/storehook.js', 'serve'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`storehook exited with ${child.exitCode}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error('storehook did not start')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return handle(child, port)
}

function handle (child: ChildProcess, port: number): Child {
  return {
    process: child,
    port,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
}

// Starts a script that prints "listening <port>".
export async function startChild (args: string[], env: Record<string, string> = {}, ipc = false): Promise<Child> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit']
  })
  let buffered = ''
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString()
      const m = /listening (\d+)/.exec(buffered)
      if (m !== null) {
        // Keep draining stdout so the child never blocks on a full pipe.
        child.stdout!.off('data', onData)
        child.stdout!.resume()
        resolve(Number(m[1]))
      } else if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000)
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
  return handle(child, port)
}

export interface LoadResult {
  requests: number
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
}

export async function load (url: string, nextBody: () => Buffer, opts: { connections: number; durationS: number; overallRate?: number }): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections: opts.connections,
    duration: opts.durationS,
    ...(opts.overallRate !== undefined ? { overallRate: opts.overallRate } : {}),
    headers: { 'content-type': 'application/json' },
    requests: [{
      setupRequest: (req) => ({ ...req, body: nextBody() })
    }]
  })
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors
  }
}

// Resident memory of a child process, from the kernel (Linux).
export function rssMb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? Number.NaN : Number(m[1]) / 1024
}

// The database's size on disk: the main file plus its write-ahead log.
export function dbMb (path: string): number {
  let bytes = 0
  for (const f of [path, `${path}-wal`]) {
    try { bytes += statSync(f).size } catch {}
  }
  return bytes / 2 ** 20
}

export async function countAtTarget (target: Child): Promise<number> {
  return new Promise<number>((resolve) => {
    target.process.once('message', (m) => resolve((m as { count: number }).count))
    target.process.send!('count')
  })
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export function machine (): string {
  const c = cpus()
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
}
