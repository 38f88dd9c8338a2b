// A start that fails must not leave anything running behind it: the outbox's
// writer thread, once started, would keep the process alive forever.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/app.ts'

t.test('startServer on a port already taken rejects and leaves nothing running', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as { port: number }).port
  const dir = tempDir(t)
  // The script neither exits nor force-exits: it must end by itself.
  // The built program, as bin/storehook.js runs it (npm test builds first).
  const src = (file: string): string => JSON.stringify(new URL(`../../dist/${file}`, import.meta.url).href)
  const script = join(dir, 'start.mjs')
  writeFileSync(script, `
    import { loadConfig } from ${src('config.js')}
    import { startServer } from ${src('server.js')}
    const config = loadConfig({ DATABASE_PATH: ${JSON.stringify(join(dir, 'storehook.db'))}, PORT: '${port}', HOST: '127.0.0.1', VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'fatal' })
    startServer(config).then(() => console.log('started'), (err) => console.log('failed:', err.code))
  `)
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const [code, signal] = await once(child, 'exit') as [number | null, string | null]
  clearTimeout(timer)
  t.match(out, /failed: EADDRINUSE/, 'the start failed because the port is taken')
  t.equal(signal, null, 'the process ended by itself, not by the watchdog')
  t.equal(code, 0)
})
