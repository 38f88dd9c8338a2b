// Start-up refuses what could never work, in one line naming the variable and
// a non-zero exit, never a stack trace: a target header value that would
// break every delivery, a DATABASE_PATH that cannot be opened, a path
// variable that names a directory. Real child processes, as an operator runs them.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configFile, tempDir } from '../helpers/app.ts'
import { runCli } from '../helpers/process.ts'
import { ConfigError, loadConfig } from '../../src/config.ts'

const BASE = { HOST: '127.0.0.1', PORT: '0', VERIFY_SIGNATURES: 'off', LOG_LEVEL: 'warn' }

async function refused (t: Test, args: string[], env: Record<string, string>, line: RegExp): Promise<void> {
  const run = await runCli(args, { ...BASE, ...env })
  t.equal(run.code, 1, `${args.join(' ')}: exit code 1`)
  t.match(run.stderr, line, `${args.join(' ')}: the line names the problem`)
  t.equal(run.stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: one line, no stack trace (${run.stderr.slice(0, 300)})`)
}

t.test('a target header value with CR, LF, NUL, another control character or non-ASCII is refused, naming target and header, never the value', async (t) => {
  const secret = 'Bearer s3cret-token-value'
  const cases: Array<[string, string]> = [['CR LF', `${secret}\r\nX-Injected: 1`], ['LF', `${secret}\n`], ['NUL', `${secret}\0`], ['ESC', `${secret}\x1b`], ['DEL', `${secret}\x7f`], ['U+20AC', `${secret}€`], ['U+00E9', `${secret}é`]]
  for (const [what, value] of cases) {
    const path = configFile(t, { targets: [{ name: 'backend', url: 'https://backend.example.com/apple', headers: { Authorization: value } }] })
    const err = (() => { try { loadConfig({ STOREHOOK_CONFIG: path }); return null } catch (e) { return e as Error } })()
    t.type(err, ConfigError, what)
    t.match(err?.message, /^STOREHOOK_CONFIG targets\[0\]: header "Authorization" has a value that is not a valid HTTP header value/, what)
    t.notMatch(err?.message, /s3cret/, `${what}: the value is never echoed`)
  }
  const fine = configFile(t, { targets: [{ url: 'https://a.example.com', headers: { Authorization: `${secret}\twith tab`, 'X-Empty': '' } }] })
  t.same(loadConfig({ STOREHOOK_CONFIG: fine }).targets[0]!.headers, { Authorization: `${secret}\twith tab`, 'X-Empty': '' }, 'tab and empty values are valid')

  const path = configFile(t, { targets: [{ name: 'backend', url: 'https://backend.example.com/apple', headers: { 'X-Key': `${secret}\r\n` } }] })
  await refused(t, ['serve'], { STOREHOOK_CONFIG: path, DATABASE_PATH: join(tempDir(t), 'x.db') }, /^storehook: STOREHOOK_CONFIG targets\[0\]: header "X-Key" has a value that is not a valid HTTP header value/)
})

t.test('DATABASE_PATH that cannot be opened stops serve and every command that opens it, in one line', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'a-file')
  writeFileSync(file, 'not a folder')
  const line = (path: string): RegExp => new RegExp(`^storehook: DATABASE_PATH: cannot open ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\S.*\\n$`)
  for (const path of ['/proc/storehook.db', dir, join(file, 'sub', 'storehook.db')]) {
    await refused(t, ['serve'], { DATABASE_PATH: path }, line(path))
  }
  for (const args of [['migrate'], ['status'], ['prune'], ['replay', '--id', 'x'], ['quarantine', 'list']]) {
    await refused(t, args, { DATABASE_PATH: '/proc/storehook.db' }, line('/proc/storehook.db'))
  }
})

t.test('the other path variables naming a directory are one line each too', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'storehook.db')
  const folder = join(dir, 'a-folder')
  mkdirSync(folder)
  await refused(t, ['serve'], { DATABASE_PATH: db, STOREHOOK_CONFIG: folder }, /^storehook: STOREHOOK_CONFIG: cannot read /)
  await refused(t, ['serve'], { DATABASE_PATH: db, TLS_CERT_PATH: folder, TLS_KEY_PATH: folder }, /^storehook: TLS_CERT_PATH: cannot read .*: not a file/)
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'not a certificate')
  await refused(t, ['serve'], { DATABASE_PATH: db, TLS_CERT_PATH: notPem, TLS_KEY_PATH: notPem }, /^storehook: TLS_CERT_PATH: .* do not load as a certificate and its key/)
  await refused(t, ['serve'], { DATABASE_PATH: db, VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: folder }, /^storehook: APPLE_ROOT_CERTS: /)
  await refused(t, ['serve'], { DATABASE_PATH: db, APPLE_ISSUER_ID: 'i', APPLE_KEY_ID: 'k', APPLE_BUNDLE_ID: 'com.example.app', APPLE_PRIVATE_KEY_PATH: folder }, /^storehook: APPLE_PRIVATE_KEY_PATH: cannot read /)
})

t.test('a decoded target without a signing secret stops start-up with one line naming the target', async (t) => {
  const path = configFile(t, { targets: [{ name: 'backend', url: 'https://backend.example.com/apple?token=s3cret', payload: 'decoded' }] })
  await refused(t, ['serve'], { STOREHOOK_CONFIG: path, DATABASE_PATH: join(tempDir(t), 'x.db') },
    /^storehook: STOREHOOK_CONFIG targets\[0\]: "payload": "decoded" needs a "signingSecret": the receiver can only trust storehook's document through its Standard Webhooks signature\n$/)
})
