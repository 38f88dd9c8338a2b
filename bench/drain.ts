// Drain: a backlog of N pending deliveries (seeded through the real outbox
// code), then storehook starts with the target live: deliveries per second,
// vs a plain undici client posting the same bodies to the same target with
// the same concurrency (the delivery floor). PROF=1 writes the server's CPU
// profiles (--cpu-prof) to /tmp/prof/drain, to see where a delivery's time goes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { bodyFactory } from './bodies.ts'
import { countAtTarget, freePort, startChild, startStorehook } from './lib.ts'
import { seedOutbox } from './seed.ts'

// storehook's default per-target concurrency (src/config.ts DEFAULT_CONCURRENCY).
export const CONCURRENCY = 4

export interface DrainResult {
  count: number
  storehookPerS: number
  floorPerS: number
  ratio: number
  // CPU per delivery (ms, user + system): the relay vs the plain client, and the target's share in each run.
  cpu: { storehookMs: number; floorClientMs: number; targetWithStorehookMs: number; targetWithFloorMs: number } | null
}

// Linux only: a process's CPU time so far, from /proc (ms).
function cpuMsOf (pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return null
  }
}

async function waitCount (target: Awaited<ReturnType<typeof startChild>>, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await countAtTarget(target)) < n) {
    if (Date.now() > deadline) throw new Error(`target got ${await countAtTarget(target)} of ${n}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export async function runDrainBench (opts: { count: number }): Promise<DrainResult> {
  const dir = mkdtempSync(join(tmpdir(), 'storehook-drain-'))
  const port = await freePort()
  const name = `127.0.0.1:${port}`
  try {
    seedOutbox(join(dir, 'drain.db'), { count: opts.count, target: name, deliveredShare: 0, pendingDueAt: Date.now() })
    const target = await startChild(['--import', 'tsx', 'bench/servers/target.ts'], { PORT: String(port) }, true)
    try {
      // The floor first, on the same target and bodies of the same sizes.
      const next = bodyFactory()
      const bodies = Array.from({ length: 1000 }, next)
      const pool = new Pool(`http://${name}`, { connections: CONCURRENCY })
      let sent = 0
      const targetCpu0 = cpuMsOf(target.process.pid)
      const clientCpu0 = process.cpuUsage()
      const started = performance.now()
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (sent < opts.count) {
          const body = bodies[sent++ % bodies.length]!
          const res = await pool.request({ path: '/hook', method: 'POST', headers: { 'content-type': 'application/json' }, body })
          await res.body.dump()
        }
      }))
      const floorPerS = opts.count / ((performance.now() - started) / 1000)
      const clientCpu = process.cpuUsage(clientCpu0)
      const targetCpu1 = cpuMsOf(target.process.pid)
      await pool.close()
      await waitCount(target, opts.count, 10_000)

      const storehook = await startStorehook({ DATABASE_PATH: join(dir, 'drain.db'), FORWARD_TARGETS: `http://${name}/hook`, VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' }, process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof/drain'] : [])
      try {
        // Measured from the moment it serves: what it delivered while starting is left out of both sides.
        const t0 = performance.now()
        const [cpu0, targetCpu2] = [cpuMsOf(storehook.process.pid), cpuMsOf(target.process.pid)]
        const c0 = (await countAtTarget(target)) - opts.count
        await waitCount(target, 2 * opts.count, 600_000)
        const storehookPerS = (opts.count - c0) / ((performance.now() - t0) / 1000)
        const [cpu1, targetCpu3] = [cpuMsOf(storehook.process.pid), cpuMsOf(target.process.pid)]
        const n = opts.count - c0
        const cpu = [targetCpu0, targetCpu1, cpu0, cpu1, targetCpu2, targetCpu3].includes(null)
          ? null
          : {
              storehookMs: (cpu1! - cpu0!) / n,
              floorClientMs: (clientCpu.user + clientCpu.system) / 1000 / opts.count,
              targetWithStorehookMs: (targetCpu3! - targetCpu2!) / n,
              targetWithFloorMs: (targetCpu1! - targetCpu0!) / opts.count
            }
        return { count: opts.count, storehookPerS, floorPerS, ratio: storehookPerS / floorPerS, cpu }
      } finally {
        await storehook.stop()
      }
    } finally {
      await target.stop()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
