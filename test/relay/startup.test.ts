// A start that fails must not leave anything running behind it: the outbox's
// writer thread, once started, would keep the process alive forever.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/app.ts'
import { runCli } from '../helpers/process.ts'

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

// The real program, as an operator starts it: one line naming the variable,
// exit code 1, no stack trace, and nothing of the secret.
t.test('a target URL with bad percent-encoding in its credentials, or a config file that is not JSON, stops start-up with one line that echoes no secret', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'storehook.json')
  // V8's message for this one quotes ..."ization": Bearer TOP"...
  writeFileSync(config, '{"targets": [{"url": "https://a.example.com/",\n "headers": {"Authorization": Bearer TOPSECRET42}}]}')
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['credentials that are not percent-encoding', { FORWARD_TARGETS: 'https://user:p%E0%A4%AsTOPSECRET42@a.example.com/hook' }, /^storehook: FORWARD_TARGETS: a target URL's credentials are not valid percent-encoding$/],
    ['a config file that is not JSON', { STOREHOOK_CONFIG: config }, /^storehook: STOREHOOK_CONFIG: .* is not valid JSON \(at line 2, column 31\)$/]
  ]
  for (const [name, env, line] of cases) {
    const r = await runCli(['serve'], { DATABASE_PATH: join(dir, 'storehook.db'), HOST: '127.0.0.1', PORT: '0', ...env })
    t.equal(r.code, 1, `${name}: exit code 1`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${name}: one line (${r.stderr.trim().slice(0, 300)})`)
    t.match(lines[0], line, `${name}: says what is wrong`)
    t.notMatch(r.stderr + r.stdout, /TOPSECRET|Bearer|URIError|    at /, `${name}: no secret, no stack trace`)
  }
})
