// HTTPS without a proxy: a certificate made here, a real notification posted
// over TLS, TLS 1.1 refused, and a renewed certificate served without a restart.
import { renameSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect, type PeerCertificate } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { pino } from 'pino'
import { ConfigError, loadConfig } from '../../src/config.ts'
import { buildApp } from '../../src/server.ts'
import { startApp, tempDir, until } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { keyPem, serverCert } from '../helpers/server-cert.ts'
import { startTarget } from '../helpers/target.ts'

// As certbot does: write elsewhere, then rename over the live file.
function replace (path: string, content: string): void {
  writeFileSync(`${path}.new`, content)
  renameSync(`${path}.new`, path)
}

function peer (port: number, ca: string[]): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca }, () => {
      const cert = socket.getPeerCertificate()
      socket.end()
      resolve(cert)
    })
    socket.once('error', reject)
  })
}

function post (port: number, ca: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/apple/notifications', method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.once('error', reject)
    req.end(body)
  })
}

t.test('TLS paths must both be readable at start: one clear config error', async (t) => {
  const dir = tempDir(t)
  const certPath = join(dir, 'cert.pem')
  writeFileSync(certPath, 'x')
  t.throws(() => loadConfig({ TLS_CERT_PATH: certPath, TLS_KEY_PATH: join(dir, 'missing.pem') }), new ConfigError('TLS_KEY_PATH', `cannot read ${join(dir, 'missing.pem')}: ENOENT`))
  t.throws(() => loadConfig({ TLS_CERT_PATH: join(dir, 'nope.pem'), TLS_KEY_PATH: certPath }), /^TLS_CERT_PATH: cannot read .*ENOENT/)
})

t.test('serves HTTPS with TLS 1.2+, forwards, and picks up a renewed certificate without a restart', async (t) => {
  const dir = tempDir(t)
  const certPath = join(dir, 'fullchain.pem')
  const keyPath = join(dir, 'privkey.pem')
  const first = serverCert('storehook-first')
  writeFileSync(certPath, first.pem)
  writeFileSync(keyPath, keyPem(first))

  const target = await startTarget()
  t.teardown(() => target.close())
  const config = loadConfig({
    DATABASE_PATH: join(dir, 'storehook.db'),
    VERIFY_SIGNATURES: 'off',
    FORWARD_TARGETS: target.url,
    TLS_CERT_PATH: certPath,
    TLS_KEY_PATH: keyPath
  })
  const logs: string[] = []
  const app = await buildApp(config, pino({ level: 'info' }, new Writable({ write (c, _e, cb) { logs.push(String(c)); cb() } })))
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const body = v2Body()
  const res = await post(port, first.pem, body)
  t.equal(res.status, 200, res.body)
  const [got] = await target.waitFor(1)
  t.same(got!.body, body, 'forwarded byte for byte after arriving over TLS')
  t.equal((await peer(port, [first.pem])).subject.CN, 'storehook-first')

  // OpenSSL's default security level would stop the client from even offering
  // TLS 1.1; level 0 lets it try, so the refusal below is the server's.
  const refused = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: [first.pem], minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }, () => {
      socket.end()
      reject(new Error('a TLS 1.1 handshake succeeded'))
    })
    socket.once('error', resolve)
  })
  t.match(refused.code, /ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION|ERR_SSL_UNSUPPORTED_PROTOCOL/, `TLS 1.1 refused: ${refused.code}`)

  // A half-done renewal (a new certificate whose key has not arrived) keeps the old pair.
  const second = serverCert('storehook-renewed')
  replace(certPath, second.pem)
  await until(() => logs.some((l) => l.includes('does not load; keeping the one in use')), 5000, 'the mismatched pair to be refused')
  t.equal((await peer(port, [first.pem])).subject.CN, 'storehook-first', 'a mismatched pair is not installed')

  replace(keyPath, keyPem(second))
  let presented = ''
  for (let i = 0; i < 200 && presented !== 'storehook-renewed'; i++) {
    await sleep(50)
    presented = String((await peer(port, [first.pem, second.pem])).subject.CN)
  }
  t.equal(presented, 'storehook-renewed', 'the renewed certificate is served by the same process')
  t.ok(logs.some((l) => l.includes('TLS certificate reloaded.')))
  t.equal((await post(port, second.pem, v2Body())).status, 200, 'and notifications keep arriving over it')
  await target.waitFor(2)
})

t.test('closing the server stops the watcher; closing twice is safe', async (t) => {
  const dir = tempDir(t)
  const cert = serverCert('storehook-close')
  writeFileSync(join(dir, 'c.pem'), cert.pem)
  writeFileSync(join(dir, 'k.pem'), keyPem(cert))
  const logs: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (c, _e, cb) { logs.push(String(c)); cb() } }))
  const app = await buildApp(loadConfig({ DATABASE_PATH: join(dir, 'db.sqlite'), TLS_CERT_PATH: join(dir, 'c.pem'), TLS_KEY_PATH: join(dir, 'k.pem') }), log)
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.close()
  await app.close()
  const next = serverCert('storehook-after-close')
  replace(join(dir, 'c.pem'), next.pem)
  replace(join(dir, 'k.pem'), keyPem(next))
  await sleep(600)
  t.notOk(logs.some((l) => l.includes('TLS certificate')), 'no reload after close')
})

t.test('dashboard pages served directly over HTTPS carry Strict-Transport-Security', async (t) => {
  const dir = tempDir(t)
  const cert = serverCert('storehook-hsts')
  writeFileSync(join(dir, 'c.pem'), cert.pem)
  writeFileSync(join(dir, 'k.pem'), keyPem(cert))
  const s = await startApp(t, { ADMIN_TOKEN: 'an-admin-token-of-enough-length', TLS_CERT_PATH: join(dir, 'c.pem'), TLS_KEY_PATH: join(dir, 'k.pem') })
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(new URL(s.url).port), path: '/admin/login', ca: cert.pem }, (res) => { res.resume(); resolve(res.headers) })
    req.once('error', reject)
    req.end()
  })
  t.equal(headers['strict-transport-security'], 'max-age=31536000')
})
