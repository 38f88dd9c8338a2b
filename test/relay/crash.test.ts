import { join } from 'node:path'
import t from 'tap'
import { engineEnv, sqliteOnly, tempDir } from '../helpers/app.ts'
import { v2Body } from '../helpers/notifications.ts'
import { spawnServer } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

async function post (url: string, body: Buffer): Promise<{ status: number; id: string }> {
  const res = await fetch(`${url}/apple/notifications`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  const json = await res.json() as { id: string }
  return { status: res.status, id: json.id }
}

t.test('SIGKILL right after the 200s loses nothing: the restarted server delivers every one', async (t) => {
  const dir = tempDir(t)
  // The target is down while the first process runs, so nothing can be delivered before the kill.
  const probe = await startTarget()
  const port = Number(new URL(probe.url).port)
  await probe.close()
  // Ingest stores a fresh delivery leased to its instance. SQLite's restart
  // takes every lease back at once; on PostgreSQL another instance may still
  // hold one, so a dead instance's leases end when they expire: a 2 s timeout
  // gives a 5 s lease, well inside the wait below.
  const env = { ...await engineEnv(join(dir, 'a.db')), DATABASE_PATH: join(dir, 'a.db'), FORWARD_TARGETS: `http://127.0.0.1:${port}/hook`, DELIVERY_TIMEOUT_MS: '2000', RETRY_MIN_DELAY_MS: '50', RETRY_MAX_DELAY_MS: '200', POLL_INTERVAL_MS: '50' }

  const first = await spawnServer(env)
  const acknowledged = await Promise.all(Array.from({ length: 60 }, () => post(first.url, v2Body())))
  t.ok(acknowledged.every((r) => r.status === 200), 'all 60 answered 200')
  t.equal(await first.kill('SIGKILL'), null, 'killed, not exited')

  const target = await startTarget(undefined, '/hook', port)
  t.teardown(target.close)
  const second = await spawnServer(env)
  t.teardown(() => second.kill('SIGTERM'))
  await target.waitFor(60, 15_000)
  const got = new Set(target.received.map((r) => r.headers['x-storehook-notification-id']))
  t.same([...acknowledged.map((r) => r.id)].filter((id) => !got.has(id)), [], 'every acknowledged notification arrived')
})

t.test('a lease left by a killed process is reclaimed at start, not after it expires', sqliteOnly('on PostgreSQL another instance may hold the lease, so only an expired one is taken back (test/faults/two-instances-pg)'), async (t) => {
  const dir = tempDir(t)
  const hanging = await startTarget(() => { /* accepts, never answers */ })
  const port = Number(new URL(hanging.url).port)
  // A 10 s timeout gives a 25 s lease: far longer than this test may wait.
  const env = { ...await engineEnv(join(dir, 'b.db')), DATABASE_PATH: join(dir, 'b.db'), FORWARD_TARGETS: `http://127.0.0.1:${port}/hook`, DELIVERY_TIMEOUT_MS: '10000', POLL_INTERVAL_MS: '50' }
  const first = await spawnServer(env)
  const { id } = await post(first.url, v2Body())
  await hanging.waitFor(1)
  // The lease runs from the first attempt: without the reclaim at start, no
  // attempt could go before this plus 25 s, however fast the restart.
  const leased = Date.now()
  await first.kill('SIGKILL')
  await hanging.close()

  const target = await startTarget(undefined, '/hook', port)
  t.teardown(target.close)
  const second = await spawnServer(env)
  t.teardown(() => second.kill('SIGTERM'))
  const [got] = await target.waitFor(1, 20_000)
  // A loaded CI machine has taken 11 s to start the process.
  t.ok(Date.now() - leased < 20_000, `delivered before the 25 s lease would expire (${Date.now() - leased} ms after it was taken)`)
  t.equal(got!.headers['x-storehook-notification-id'], id)
  t.equal(got!.headers['x-storehook-attempt'], '2', 'the attempt cut short by the kill counts')
  t.ok(second.lines.some((l) => l.includes('Reclaimed leases') && l.includes('"reclaimed":1')), 'the reclaim is logged')
})

t.test('SIGTERM finishes in-flight deliveries before exiting', async (t) => {
  const dir = tempDir(t)
  const slow = await startTarget((_r, _n, res) => { setTimeout(() => res.writeHead(200).end(), 400) })
  t.teardown(slow.close)
  const env = { ...await engineEnv(join(dir, 'c.db')), DATABASE_PATH: join(dir, 'c.db'), FORWARD_TARGETS: slow.url, POLL_INTERVAL_MS: '50' }
  const server = await spawnServer(env)
  await post(server.url, v2Body())
  await slow.waitFor(1)
  const code = await server.kill('SIGTERM')
  t.equal(code, 0, 'exits cleanly')
  t.ok(server.lines.some((l) => l.includes('"msg":"Delivered."')), 'the in-flight delivery completed before exit')
})

t.test('SIGINT with a target that never answers: in-flight work is released at the deadline and delivered after restart', async (t) => {
  const dir = tempDir(t)
  const hanging = await startTarget(() => { /* never answers */ })
  const port = Number(new URL(hanging.url).port)
  const env = { ...await engineEnv(join(dir, 'd.db')), DATABASE_PATH: join(dir, 'd.db'), FORWARD_TARGETS: `http://127.0.0.1:${port}/hook`, DELIVERY_TIMEOUT_MS: '30000', SHUTDOWN_TIMEOUT_MS: '300', POLL_INTERVAL_MS: '50' }
  const server = await spawnServer(env)
  const { id } = await post(server.url, v2Body())
  await hanging.waitFor(1)
  const started = Date.now()
  t.equal(await server.kill('SIGINT'), 0, 'exits cleanly on SIGINT, as Fly sends it')
  t.ok(Date.now() - started < 5000, `within the deadline, not the 30 s request timeout (${Date.now() - started} ms)`)
  t.ok(server.lines.some((l) => l.includes('Shutdown deadline reached')), 'says it aborted in-flight work')
  await hanging.close()

  const target = await startTarget(undefined, '/hook', port)
  t.teardown(target.close)
  const again = await spawnServer(env)
  t.teardown(() => again.kill('SIGTERM'))
  const [got] = await target.waitFor(1, 5000)
  t.equal(got!.headers['x-storehook-notification-id'], id)
  t.equal(got!.headers['x-storehook-attempt'], '2', 'the aborted attempt is in the history, and this is the next one')
  t.notOk(again.lines.some((l) => l.includes('Reclaimed leases')), 'nothing to reclaim: the lease was released, not left behind')
})
