// The admin token cannot be guessed by brute force: wrong tokens are limited
// per client address (login form and API together), refusals are logged in
// aggregate, other addresses are unaffected.
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { startApp } from '../helpers/app.ts'
import { postForm } from '../helpers/dashboard.ts'
import { WRONG_TOKENS_PER_WINDOW } from '../../src/routes/admin-guard.ts'

const fly = (address: string): Record<string, string> => ({ 'fly-client-ip': address })

function logLines (logs: string[]): Array<Record<string, unknown>> {
  return logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
}

t.test('a flood of wrong logins gets 429 with Retry-After, the right token too, another address does not, the log stays short', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN, TRUST_PROXY: 'fly' })
  const attacker = fly('203.0.113.7')
  const statuses: number[] = []
  for (let i = 0; i < 200; i++) statuses.push((await postForm(s.url, '/admin/login', { token: `guess-${i}-of-enough-length` }, attacker)).status)
  t.same(statuses.slice(0, WRONG_TOKENS_PER_WINDOW), Array(WRONG_TOKENS_PER_WINDOW).fill(401), 'the first wrong tokens are answered 401')
  t.same(statuses.slice(WRONG_TOKENS_PER_WINDOW), Array(200 - WRONG_TOKENS_PER_WINDOW).fill(429), 'then 429')

  const limited = await postForm(s.url, '/admin/login', { token: 'yet-another-guess-of-length' }, attacker)
  t.equal(limited.status, 429)
  t.match(limited.headers.get('content-type'), /^text\/html/, 'the login form gets an HTML page, like other dashboard errors')
  t.match(limited.text, /RATE_LIMITED/)
  const retryAfter = Number(limited.headers.get('retry-after'))
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After in seconds (${retryAfter})`)

  const right = await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN }, attacker)
  t.equal(right.status, 429, 'the right token from the limited address is refused too: otherwise 429 vs 303 would tell a guess right')
  t.equal(right.headers.get('set-cookie'), null)
  const apiFromAttacker = await api(s.url, '/targets', { headers: attacker })
  t.equal(apiFromAttacker.status, 429, 'the API shares the bucket: switching buys no guesses')
  t.same(apiFromAttacker.json, { error: apiFromAttacker.json.error, code: 'RATE_LIMITED' })
  t.match(apiFromAttacker.json.error, /retry in \d+ s/)

  const other = await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN }, fly('198.51.100.9'))
  t.equal(other.status, 303, 'another address logs in')
  t.equal((await api(s.url, '/targets', { headers: fly('198.51.100.9') })).status, 200)

  await s.close()
  const lines = logLines(s.logs)
  t.ok(lines.length < 20, `a bounded log for 200 refusals (${lines.length} lines)`)
  const summary = lines.filter((l) => l.component === 'admin')
  t.equal(summary.length, 1, 'one aggregate line')
  t.match(summary[0], { level: 40, wrongToken: WRONG_TOKENS_PER_WINDOW, rateLimited: 200 - WRONG_TOKENS_PER_WINDOW + 3, addresses: 1, busiest: [{ address: '203.0.113.7' }] })
  t.notMatch(s.logs.join(''), ADMIN_TOKEN, 'the token never reaches the logs')
  t.notMatch(s.logs.join(''), /guess-/, 'nor do the guesses')
})

t.test('wrong bearer tokens are limited per address; right ones are never counted', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN, TRUST_PROXY: 'fly' })
  const script = fly('192.0.2.10')
  const calls: number[] = []
  for (let i = 0; i < 100; i++) calls.push((await api(s.url, '/targets', { headers: script })).status)
  t.same(calls, Array(100).fill(200), '100 calls with the right token in a row: no limit on a script that has it')

  const attacker = fly('192.0.2.66')
  const statuses: number[] = []
  for (let i = 0; i < 50; i++) statuses.push((await api(s.url, '/targets', { headers: attacker }, `wrong-${i}-token-of-length`)).status)
  t.same(statuses, [...Array(WRONG_TOKENS_PER_WINDOW).fill(401), ...Array(50 - WRONG_TOKENS_PER_WINDOW).fill(429)])
  const noHeader = await fetch(`${s.url}/admin/api/targets`, { headers: attacker })
  t.equal(noHeader.status, 429, 'no token at all: refused the same')
  t.ok(Number(noHeader.headers.get('retry-after')) > 0, 'with Retry-After')
  t.equal((await api(s.url, '/targets', { headers: attacker })).status, 429, 'the right token from there waits for the window too')
  t.equal((await api(s.url, '/targets', { headers: script })).status, 200, 'the script is unaffected')
})

t.test('without TRUST_PROXY, Fly-Client-IP is not believed: rotating it buys no guesses', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  const statuses: number[] = []
  for (let i = 0; i < 30; i++) statuses.push((await api(s.url, '/targets', { headers: fly(`203.0.113.${i + 1}`) }, `wrong-${i}-token-of-length`)).status)
  t.same(statuses, [...Array(WRONG_TOKENS_PER_WINDOW).fill(401), ...Array(30 - WRONG_TOKENS_PER_WINDOW).fill(429)])
})
