// A guessing flood on the admin token while Apple keeps posting: thousands of
// wrong logins and wrong bearer calls from many addresses (TRUST_PROXY=fly,
// one Fly-Client-IP each), with notifications flowing at the same time.
// Every notification is answered 200, stored and forwarded; the flood gets
// 429 after each address's few wrong tokens; the log stays a few lines; the
// right token still works from a clean address.
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { startApp } from '../helpers/app.ts'
import { postForm } from '../helpers/dashboard.ts'
import { QUICK } from '../helpers/ledger.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'
import { WRONG_TOKENS_PER_WINDOW } from '../../src/routes/admin-guard.ts'

const ADDRESSES = QUICK ? 40 : 400
const GUESSES = QUICK ? 2_000 : 20_000
const NOTIFICATIONS = QUICK ? 200 : 1_000
// Requests in flight at once, per stream: enough to overlap, bounded for a small machine.
const PARALLEL = 16

async function pool (count: number, parallel: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await one(next++)
  }))
}

t.test(`${GUESSES} wrong admin tokens from ${ADDRESSES} addresses while ${NOTIFICATIONS} notifications arrive`, async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { ADMIN_TOKEN, TRUST_PROXY: 'fly', FORWARD_TARGETS: target.url, LOG_LEVEL: 'info' })
  const started = Date.now()

  const floodStatuses = new Map<number, number>()
  const flood = pool(GUESSES, PARALLEL, async (i) => {
    const headers = { 'fly-client-ip': `10.${(i % ADDRESSES) >> 8}.${(i % ADDRESSES) & 255}.1` }
    const status = i % 2 === 0
      ? (await postForm(s.url, '/admin/login', { token: `guess-${i}-of-enough-length` }, headers)).status
      : (await api(s.url, '/targets', { headers }, `guess-${i}-of-enough-length`)).status
    floodStatuses.set(status, (floodStatuses.get(status) ?? 0) + 1)
  })
  const notificationStatuses: number[] = []
  const notifications = pool(NOTIFICATIONS, 4, async (i) => {
    notificationStatuses.push((await s.post(v2Body({ notificationUUID: `flood-${i}` }), { 'content-type': 'application/json', 'fly-client-ip': '17.58.0.1' })).status)
  })
  await Promise.all([flood, notifications])
  t.comment(`flood and notifications done in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(floodStatuses))}`)

  t.same(notificationStatuses, Array(NOTIFICATIONS).fill(200), 'every notification answered 200')
  t.same([...floodStatuses.keys()].sort(), [401, 429], 'the flood got only 401 and 429')
  t.equal(floodStatuses.get(401), ADDRESSES * WRONG_TOKENS_PER_WINDOW, 'exactly the allowed wrong tokens per address were answered, the rest refused')

  const right = await api(s.url, '/targets', { headers: { 'fly-client-ip': '192.0.2.200' } })
  t.equal(right.status, 200, 'the right token works from a clean address')
  t.equal(right.json.targets[0].pending + right.json.targets[0].delivered, NOTIFICATIONS, 'every notification is stored with its delivery')
  t.equal((await postForm(s.url, '/admin/login', { token: ADMIN_TOKEN }, { 'fly-client-ip': '192.0.2.201' })).status, 303, 'and logs in')
  await target.waitFor(NOTIFICATIONS, 120_000)
  t.pass('every notification reached the target')

  await s.close()
  const lines = s.logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; component?: string })
  const floodLines = lines.filter((l) => l.component === 'admin' || l.component === 'dashboard' || /refused|token|login/i.test(l.msg))
  t.ok(floodLines.length <= 5, `the flood left ${floodLines.length} log line(s) (${lines.length} in all)`)
  t.ok(lines.length <= NOTIFICATIONS * 3 + 50, `the log is bounded by the notifications, not the flood (${lines.length} lines)`)
  t.notMatch(s.logs.join(''), ADMIN_TOKEN, 'the token never reaches the logs')
})
