// The README's receiver (examples/decoded-receiver.mjs), run as a newcomer
// runs it: a real child process on 127.0.0.1 that verifies each body with
// the standardwebhooks package and reads the renewal. It must accept what
// storehook sends a decoded target and refuse a body that was not signed.
import { spawn } from 'node:child_process'
import t from 'tap'
import { freePort } from '../../bench/lib.ts'
import { configFile, startApp, until } from '../helpers/app.ts'
import { cases } from '../helpers/decoded.ts'

const SECRET = 'whsec_' + Buffer.from('the backend\'s own signing secret').toString('base64')

t.test('the README receiver verifies storehook\'s signature and reads the decoded renewal', async (t) => {
  const port = await freePort()
  const receiver = spawn(process.execPath, [new URL('../../examples/decoded-receiver.mjs', import.meta.url).pathname], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), STOREHOOK_SIGNING_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { receiver.kill() })
  let out = ''
  receiver.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  const url = `http://127.0.0.1:${port}/apple`
  await until(async () => { try { await fetch(url, { method: 'POST', body: '{}' }); return true } catch { return false } }, 10_000, 'the receiver listens')

  const forged = await fetch(url, { method: 'POST', body: '{}', headers: { 'webhook-id': 'x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' } })
  t.equal(forged.status, 401, 'a body storehook did not sign is refused')

  const s = await startApp(t, { STOREHOOK_CONFIG: configFile(t, { targets: [{ name: 'backend', url, payload: 'decoded', signingSecret: SECRET }] }) })
  const subscribed = cases().all.find((c) => c.name === 'signedNotification (data)')!
  const { json } = await s.post(subscribed.body)
  await until(() => out.includes('\n'), 10_000, 'the receiver printed a line')
  t.equal(out.trim(), `${json.id as string} SUBSCRIBED unchecked 1 1700827200000`, 'id, type, storehook\'s verdict and the renewal, read from the decoded body')
  await until(async () => (await s.app.outbox.getNotification(json.id as string))!.deliveries[0]!.status === 'delivered', 10_000, 'delivered')
  t.pass('delivered: the receiver answered 200')
})
