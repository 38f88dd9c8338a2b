// A value from outside (query string, command line, environment, Apple's
// answer) that names an entry of a table finds only the table's own entries,
// never what every object inherits (__proto__, toString, valueOf...).
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { configFile, startApp } from '../helpers/app.ts'
import { get, login } from '../helpers/dashboard.ts'
import { v2Body } from '../helpers/notifications.ts'
import { runCli } from '../helpers/process.ts'
import { adviceFor } from '../../src/appstore/test-notification.ts'
import { loadConfig } from '../../src/config.ts'

const INHERITED = ['__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'constructor', 'isPrototypeOf', '__defineGetter__']

t.test('?done= on the dashboard pages: an inherited name is no flash, never a 500', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  t.equal((await s.post(v2Body())).status, 200)
  const id = (await api(s.url, '/notifications')).json.items[0].id as string
  const { cookie } = await login(s.url)
  for (const path of ['/admin/dead', '/admin/quarantine', `/admin/notifications/${id}`]) {
    for (const done of INHERITED) {
      const page = await get(s.url, `${path}?done=${done}&n=1`, cookie)
      t.equal(page.status, 200, `${path}?done=${done}`)
      t.notMatch(page.text, /\[object |class="flash"|function /, `${path}?done=${done}: no flash, nothing inherited shown`)
    }
    const real = await get(s.url, `${path}?done=bulk&n=3`, cookie)
    t.match(real.text, /Replay queued for 3 notifications/, `${path}: a real flash still shows`)
    for (const n of ['-5', '1e9', '9999999', '3abc', ' 3']) {
      const crafted = await get(s.url, `${path}?done=bulk&n=${encodeURIComponent(n)}`, cookie)
      t.notMatch(crafted.text, /class="flash"/, `${path}: n=${n} is no count storehook wrote, so no flash`)
    }
  }
})

t.test('Apple\'s sendAttemptResult: an inherited name gets the advice for OTHER', async (t) => {
  for (const name of INHERITED) t.equal(adviceFor(name), adviceFor('OTHER'), name)
  t.match(adviceFor('TIMED_OUT'), /waited too long/)
})

t.test('ALLOWED_SOURCE_IPS: an inherited name is refused as an address, not a crash', async (t) => {
  for (const name of ['constructor', '__proto__', 'toString']) {
    t.throws(() => loadConfig({ ALLOWED_SOURCE_IPS: name }), { name: 'ConfigError', message: `ALLOWED_SOURCE_IPS: "${name}" is not an IP address, a CIDR block or the preset "apple"` })
  }
  t.same(loadConfig({ ALLOWED_SOURCE_IPS: 'apple' }).allowedSourceIps, [{ address: '17.0.0.0', prefix: 8, family: 'ipv4' }])
})

t.test('storehook --help NAME: an inherited name gets the general help', async (t) => {
  for (const name of ['__proto__', 'constructor']) {
    const help = await runCli(['help', name], {})
    t.equal(help.code, 0)
    t.match(help.stdout, /^storehook .*Usage: storehook <command>/s, name)
    t.notMatch(help.stdout, /\[object|function/)
  }
})

t.test('a target header named __proto__ in the config file is kept as a header, not made a prototype', async (t) => {
  const path = configFile(t, JSON.parse('{"targets": [{"url": "https://a.example.com", "headers": {"__proto__": "x", "X-Other": "y"}}]}'))
  const headers = loadConfig({ STOREHOOK_CONFIG: path }).targets[0]!.headers
  t.ok(Object.hasOwn(headers, '__proto__'), 'its own header')
  t.equal(Object.getPrototypeOf(headers), Object.prototype)
  t.same(Object.entries(headers), [['__proto__', 'x'], ['X-Other', 'y']])
})
