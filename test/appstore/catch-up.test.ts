import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, tempDir, until } from '../helpers/app.ts'
import { settled, tally } from '../helpers/facts.ts'
import { appleWorld } from '../helpers/apple-keys.ts'

const body = (signedPayload: string): string => JSON.stringify({ signedPayload })
const ADMIN_TOKEN = 'admin-token-0123456789'

t.test('at start, the server catches up on what Apple sent while it was down, and says so', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const env = { ...pki.env, FORWARD_TARGETS: target.url, DATABASE_PATH: join(tempDir(t), 'storehook.db'), CATCH_UP_INTERVAL_MS: '0', CATCH_UP_MARGIN_MS: '60000', ADMIN_TOKEN }

  const first = await startApp(t, env)
  const delivered = pki.sign()
  t.equal((await first.post(body(delivered))).status, 200)
  await target.waitFor(1)
  await until(async () => (await first.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE finished_at IS NOT NULL`))!.n === 2, 10_000, 'the first catch-up')
  await first.close()
  const downAt = Date.now()

  // While storehook was down, Apple failed to deliver three; it also lists the one that did arrive.
  api.add(delivered, { signedDate: downAt - 1000, failed: false })
  const missed = [pki.sign(), pki.sign(), pki.sign()]
  for (const [i, p] of missed.entries()) api.add(p, { signedDate: downAt + i })
  const before = api.requests.length

  const second = await startApp(t, env)
  // Both start-up runs (one per environment) finished: every row they add is
  // written; then, settled, the rows are all the target will get.
  await until(async () => (await second.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs WHERE finished_at IS NOT NULL`))!.n === 4, 15_000, 'the second start\'s catch-up')
  await settled(second, 15_000)
  t.same(await tally(second), { deliveries: 4, delivered: 4, dead: 0, pending: 0, attempts: 4, recorded: 4 })
  t.equal(target.received.length, 4, 'every missed notification reached the target, once')
  t.same(target.received.slice(1).map((r) => JSON.parse(r.body.toString()).signedPayload).sort(), [...missed].sort(), 'the same payloads Apple signed')

  const asked = api.requests.slice(before).filter((q) => q.path.startsWith('/inApps/v1/notifications/history'))
  t.equal(asked.length, 2, 'one history run per environment')
  const lastReceived = (await second.facts.get<{ at: number }>(sql`SELECT min(received_at) AS at FROM notifications`))!.at
  t.ok(Math.abs(Number(asked[0]!.body!.startDate) - (lastReceived - 60_000)) < 2000, 'from the last notification received, minus the margin')
  t.equal(asked[0]!.body!.onlyFailures, undefined, 'at start: everything in the window, not only failures')

  const metrics = await fetch(`${second.url}/metrics`).then((r) => r.text())
  t.match(metrics, /storehook_catch_up_recovered_total\{environment="Production"\} 3/, 'the mock serves one history for both hosts: Production finds them')
  t.match(metrics, /storehook_catch_up_last_success_timestamp_seconds\{environment="Sandbox"\} \d/)
  const state = await fetch(`${second.url}/admin/api/catch-up`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json()) as any
  t.equal(state.enabled, true)
  t.match(state.runs, [
    { bundleId: 'com.example', environment: 'Production', kind: 'catch-up-start', seen: 4, new: 3, already: 1, refused: 0, lastError: null },
    { bundleId: 'com.example', environment: 'Sandbox', kind: 'catch-up-start', seen: 4, new: 0, already: 4, refused: 0, lastError: null }
  ])
  t.type(state.runs[0].finished, 'number')
  t.match(second.logs.join(''), /Catch-up recovered notifications storehook had missed/)
})

t.test('periodically, the server asks for onlyFailures; a failed run is logged and retried at the next interval', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  api.failNext(401, 2)
  const s = await startApp(t, { ...pki.env, FORWARD_TARGETS: target.url, CATCH_UP_INTERVAL_MS: '300', CATCH_UP_MARGIN_MS: '1000' })
  await until(() => s.logs.join('').includes('Catch-up failed'), 10_000, 'the failed run')
  const log = s.logs.join('')
  t.match(log, /"environment":"Production".*401 Unauthorized/, 'the failure is logged with Apple\'s reason')
  t.notMatch(log, /eyJ|PRIVATE KEY/, 'no token or key in the log')

  api.add(pki.sign(), { signedDate: Date.now(), failed: true })
  api.add(pki.sign(), { signedDate: Date.now(), failed: false })
  await target.waitFor(1, 10_000)
  await until(() => api.requests.filter((q) => q.body?.onlyFailures === true).length >= 2, 10_000, 'periodic runs')
  t.equal(target.received.length, 1, 'only what Apple failed to deliver is asked for and recovered')
  const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text())
  t.match(metrics, /storehook_catch_up_failures_total\{environment="Production"\} 1/)
  t.match(metrics, /storehook_catch_up_recovered_total\{environment="Production"\} 1/)
  const kinds = (await s.facts.all<{ kind: string }>(sql`SELECT DISTINCT kind FROM history_runs ORDER BY kind`)).map((r) => r.kind)
  t.same(kinds, ['catch-up-periodic', 'catch-up-start'])
  await s.close()
  await s.close()
  t.pass('closing twice is safe')
})

t.test('without keys the feature is off, said once; the admin API says so', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN })
  t.equal(s.app.catchUp, null)
  t.equal(s.logs.join('').split('automatic catch-up, backfill and test notifications are off').length - 1, 1)
  const state = await fetch(`${s.url}/admin/api/catch-up`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json()) as any
  t.same(state, { enabled: false, intervalMs: null, marginMs: null, running: false, runs: [] })
  const test = await fetch(`${s.url}/admin/api/test-notification`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(test.status, 404)
})
