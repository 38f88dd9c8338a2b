// test/helpers/postgres.ts cleans up after itself however the process ends:
// a test that throws, or tap's SIGTERM on a timeout. What it leaves would
// otherwise be a running server and a data folder per failed run.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { postgresUnavailable } from '../helpers/postgres.ts'

const unavailable = postgresUnavailable()
const child = fileURLToPath(new URL('./cluster-child.ts', import.meta.url))

// Resolves with the error code of a TCP connection attempt, or 'connected'.
function dial (port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve('connected') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)))
  })
}

if (unavailable !== null) {
  t.plan(0, unavailable)
} else {
  for (const ending of ['throw', 'SIGTERM'] as const) {
    t.test(`the cluster is stopped and its folder removed when the process ends by ${ending}`, async (t) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, ending], { stdio: ['pipe', 'pipe', 'pipe'] })
      // The child's first line is the fact to wait on: the cluster is up.
      const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      const first = await Promise.race([once(createInterface({ input: proc.stdout }), 'line') as Promise<[string]>, exited.then(() => null)])
      if (first === null) throw new Error('the child ended before its cluster was up')
      const { dir, port } = JSON.parse(first[0]) as { dir: string, port: number }
      t.ok(existsSync(dir), 'the folder exists while the child runs')
      t.equal(await dial(port), 'connected', 'the server accepts connections while the child runs')
      // Only now may it end: before, its cluster could be gone before the dial.
      if (ending === 'SIGTERM') proc.kill('SIGTERM')
      else proc.stdin.write('go\n')
      const [code, signal] = await exited
      t.ok(ending === 'throw' ? code !== 0 : signal === 'SIGTERM', `the child ended by ${ending} (code ${code}, signal ${signal})`)
      t.notOk(existsSync(dir), 'the folder is gone')
      t.equal(await dial(port), 'ECONNREFUSED', 'nothing listens on its port')
    })
  }
}
