import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { startApp } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'

t.test('ALLOWED_SOURCE_IPS refuses other senders with 403, and believes proxy headers only when told to', async (t) => {
  const closed = await startApp(t, { ALLOWED_SOURCE_IPS: '10.0.0.0/8,192.168.1.7' })
  const refused = await closed.post(v2Body())
  t.equal(refused.status, 403)
  t.equal(refused.json.code, 'SOURCE_NOT_ALLOWED')
  t.match(refused.json.error, /127\.0\.0\.1/)
  t.equal((await fetch(`${closed.url}/healthz`)).status, 200, 'health checks are not filtered')

  const local = await startApp(t, { ALLOWED_SOURCE_IPS: '127.0.0.0/8' })
  t.equal((await local.post(v2Body())).status, 200)

  // Without TRUST_PROXY, a sender cannot claim to be Apple.
  const untrusting = await startApp(t, { ALLOWED_SOURCE_IPS: 'apple' })
  t.equal((await untrusting.post(v2Body(), { 'content-type': 'application/json', 'fly-client-ip': '17.58.1.2' })).status, 403)

  const fly = await startApp(t, { ALLOWED_SOURCE_IPS: 'apple', TRUST_PROXY: 'fly' })
  t.equal((await fly.post(v2Body(), { 'content-type': 'application/json', 'fly-client-ip': '17.58.1.2' })).status, 200, 'Apple, through Fly')
  t.equal((await fly.post(v2Body(), { 'content-type': 'application/json', 'fly-client-ip': '203.0.113.9' })).status, 403, 'someone else, through Fly')

  const fwd = await startApp(t, { ALLOWED_SOURCE_IPS: 'apple', TRUST_PROXY: 'forwarded' })
  t.equal((await fwd.post(v2Body(), { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9, 17.58.200.1' })).status, 200, 'the entry the proxy appended counts')
  t.equal((await fwd.post(v2Body(), { 'content-type': 'application/json', 'x-forwarded-for': '17.58.200.1, 203.0.113.9' })).status, 403, 'a spoofed leftmost entry does not')
})

t.test('bad source settings stop start-up', async (t) => {
  t.throws(() => loadConfig({ ALLOWED_SOURCE_IPS: 'not-an-ip' }), /^ALLOWED_SOURCE_IPS: "not-an-ip" is not an IP address/)
  t.throws(() => loadConfig({ ALLOWED_SOURCE_IPS: '10.0.0.0/33' }), /prefix length outside 0-32/)
  t.throws(() => loadConfig({ TRUST_PROXY: 'yes' }), /^TRUST_PROXY: must be none, fly or forwarded/)
  t.same(loadConfig({ ALLOWED_SOURCE_IPS: 'apple,::1' }).allowedSourceIps, [
    { address: '17.0.0.0', prefix: 8, family: 'ipv4' },
    { address: '::1', prefix: 128, family: 'ipv6' }
  ])
})
