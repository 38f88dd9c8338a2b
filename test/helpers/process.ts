// Runs the real `storehook` program as a child process, as production does,
// so tests can kill it with SIGKILL and start it again on the same file.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/storehook.js', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  url: string
  lines: string[]
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
}

// How to run the program: Node on bin/storehook.js by default; the binary
// and Deno checks (test/runtimes/) run the same scenarios through another
// command, from another folder, with a longer start-up allowance.
export interface Runner {
  command: string[]
  cwd?: string
  startTimeoutMs?: number
  // runCli kills the command after this long (SIGKILL; the exit code is then
  // null), for tests whose failure could be a server that starts instead of exiting.
  timeoutMs?: number
}

export const NODE: Runner = { command: [process.execPath, BIN] }

// How long a child may take to say it is listening: the process alone takes
// 3-4 s to load here when the machine is quiet, and a CI machine running two
// test files at once has taken 11 s.
const START_TIMEOUT_MS = 30_000

export async function spawnServer (env: Record<string, string>, args: string[] = ['serve'], runner: Runner = NODE): Promise<ServerProcess> {
  const [cmd = process.execPath, ...pre] = runner.command
  const child = spawn(cmd, [...pre, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: '0', VERIFY_SIGNATURES: 'off', ...env },
    cwd: runner.cwd,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  let buffered = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${lines.join('\n')}`)), runner.startTimeoutMs ?? START_TIMEOUT_MS)
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
        if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString()))
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${lines.join('\n')}`)) })
  })
  return {
    child,
    url,
    lines,
    async kill (signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await once(child, 'exit') as [number | null]
      return code
    }
  }
}

// The program as Apple meets it in production, for the suites that attack
// its ingest: signatures enforced against `rootPem` (written into `dir`, with
// the database), a V1 shared secret, one target, a body limit.
export interface EnforcingOptions {
  rootPem: string
  sharedSecret: string
  target: string
  bodyLimitBytes: number
}

export async function spawnEnforcing (dir: string, o: EnforcingOptions, env: Record<string, string> = {}): Promise<ServerProcess> {
  const roots = join(dir, 'root.pem')
  writeFileSync(roots, o.rootPem)
  return await spawnServer({
    DATABASE_PATH: join(dir, 'storehook.db'),
    VERIFY_SIGNATURES: 'enforce',
    APPLE_ROOT_CERTS: roots,
    APPLE_SHARED_SECRET: o.sharedSecret,
    FORWARD_TARGETS: o.target,
    BODY_LIMIT_BYTES: String(o.bodyLimitBytes),
    LOG_LEVEL: 'info',
    ...env
  })
}

export async function runCli (args: string[], env: Record<string, string>, runner: Runner = NODE): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd = process.execPath, ...pre] = runner.command
  const child = spawn(cmd, [...pre, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, cwd: runner.cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: runner.timeoutMs, killSignal: 'SIGKILL' })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}
