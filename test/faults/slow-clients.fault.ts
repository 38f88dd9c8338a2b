// Slowloris and idle connections against the real program while Apple's
// notifications keep arriving (security review, finding 3): many clients send
// their headers and then a byte every half second, many open a connection and
// send nothing, many ask once and then sit on the keep-alive connection. Every
// real notification is answered 200, stored and delivered; every slow one is
// cut (408 or closed) within REQUEST_TIMEOUT_MS; every idle one is closed; the
// process's open sockets fall back; nothing half-received is stored.
// Only 127.0.0.1, bounded in count and in time (FAULTS_QUICK=1: fewer clients).
import { readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { tempDir } from '../helpers/app.ts'
import { altered, missing, QUICK, sleep, startLedgerTarget, startLoad } from '../helpers/ledger.ts'
import { v2Body } from '../helpers/notifications.ts'
import { spawnServer } from '../helpers/process.ts'
import { dial, HEALTH_REQUEST, portOf, postHead, trickle, type Client } from '../helpers/sockets.ts'

const SLOW = QUICK ? 60 : 300
const SILENT = QUICK ? 60 : 300
const KEPT = QUICK ? 30 : 150
const REQUEST_TIMEOUT_MS = 2000
const HEADERS_TIMEOUT_MS = 1000
// Longer than undici's own idle time (4 s), so the load's fetch closes its idle
// connections first, as a reverse proxy in front of storehook should.
const KEEP_ALIVE_TIMEOUT_MS = 5000
// Node closes an idle keep-alive connection a second after what it advertises.
const NODE_KEEP_ALIVE_BUFFER_MS = 1000
// Timers fire late on a machine shared with other runs (a load of 20 on two
// cores was seen while writing this), more so with this many sockets: cut
// within this much past the timeout. Without the fix they stay 60-90 s.
const SLACK_MS = 5000

function openSockets (pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++ } catch {}
  }
  return n
}

// Opens `count` connections in batches, so the listen backlog is never the limit under test.
// `sample` runs after each batch: the peak is watched while the connections
// open, since on a slow machine the first silent ones may already be cut
// (HEADERS_TIMEOUT_MS) by the time the last are open.
async function openMany (port: number, count: number, start: (c: Client) => void, sample: () => void): Promise<Client[]> {
  const clients: Client[] = []
  for (let i = 0; i < count; i += 20) {
    const batch = Array.from({ length: Math.min(20, count - i) }, () => dial(port))
    await Promise.all(batch.map((c) => new Promise<void>((resolve) => { c.socket.once('connect', resolve); c.socket.once('close', () => resolve()) })))
    for (const c of batch) start(c)
    clients.push(...batch)
    sample()
  }
  return clients
}

t.test(`${SLOW} slow bodies, ${SILENT} silent and ${KEPT} idle keep-alive connections while notifications arrive`, async (t) => {
  const dir = tempDir(t)
  const target = await startLedgerTarget()
  t.teardown(target.close)
  const dbPath = join(dir, 'slow.db')
  const server = await spawnServer({
    DATABASE_PATH: dbPath,
    FORWARD_TARGETS: target.url,
    POLL_INTERVAL_MS: '50',
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS)
  })
  t.teardown(() => server.kill('SIGTERM'))
  const pid = server.child.pid!
  const port = portOf(server.url)
  const baseline = openSockets(pid)
  const all: Client[] = []
  t.teardown(() => { for (const c of all) c.socket.destroy() })

  const load = startLoad(() => server.url, 4)
  t.teardown(load.stop)

  const stops: Array<() => void> = []
  t.teardown(() => { for (const stop of stops) stop() })
  let peak = 0
  const sample = (): void => { peak = Math.max(peak, openSockets(pid)) }
  const slow = await openMany(port, SLOW, (c) => {
    const body = v2Body()
    c.socket.write(postHead(body.length))
    stops.push(trickle(c, body, 500))
  }, sample)
  // A slow body is cut REQUEST_TIMEOUT_MS after the server accepted it at the
  // earliest, so when the last one has connected every one of them must still be
  // open: the server held them all at once. This is asserted from the client's
  // side; the process's own socket count is only reported, because on a loaded
  // machine the server accepts from its backlog later than the clients connect
  // (CI once sampled 45 of 60 while all 60 were open and each got its 408).
  const cutBeforeAllOpen = slow.filter((c) => c.isClosed()).length
  t.equal(cutBeforeAllOpen, 0, `all ${SLOW} slow bodies were open at once (none cut before the last one connected)`)
  const silent = await openMany(port, SILENT, () => {}, sample)
  const kept = await openMany(port, KEPT, (c) => { c.socket.write(HEALTH_REQUEST) }, sample)
  all.push(...slow, ...silent, ...kept)
  t.comment(`the process held a peak of ${peak} sockets (${baseline} before)`)

  const slowTimes = await Promise.all(slow.map((c) => c.closed(REQUEST_TIMEOUT_MS + SLACK_MS, 'a slow body to be cut')))
  const answers = slow.map((c) => c.received())
  // A client still sending when it is cut may get a reset instead of the 408:
  // the kernel answers bytes the server has not read with one, and the reset
  // can overtake the answer. Either way the connection is gone.
  t.ok(answers.every((a) => a === '' || a.startsWith('HTTP/1.1 408 ')), 'each slow body got a 408 or a close, nothing else')
  t.ok(answers.filter((a) => a.startsWith('HTTP/1.1 408 ')).length > 0, `${answers.filter((a) => a.startsWith('HTTP/1.1 408 ')).length} of ${SLOW} got the 408 itself`)
  t.ok(Math.max(...slowTimes) <= REQUEST_TIMEOUT_MS + SLACK_MS, `all cut by ${Math.max(...slowTimes)} ms`)

  const silentTimes = await Promise.all(silent.map((c) => c.closed(HEADERS_TIMEOUT_MS + SLACK_MS, 'a silent connection to be closed')))
  t.ok(Math.max(...silentTimes) <= HEADERS_TIMEOUT_MS + SLACK_MS, `every silent connection closed, the last after ${Math.max(...silentTimes)} ms`)

  // Each was answered before this point, so each must close within the keep-alive time from now.
  await Promise.all(kept.map((c) => c.waitFor(/\{"status":"ok"\}/, 10_000, 'the health answer')))
  const keptTimes = await Promise.all(kept.map((c) => c.closed(KEEP_ALIVE_TIMEOUT_MS + NODE_KEEP_ALIVE_BUFFER_MS + SLACK_MS, 'an idle keep-alive connection to be closed')))
  t.ok(keptTimes.every((ms) => ms >= KEEP_ALIVE_TIMEOUT_MS - 100), 'no keep-alive connection was closed before its time')
  t.pass(`every idle keep-alive connection closed, the last ${Math.max(...keptTimes)} ms after it opened`)

  await load.stop()
  const statuses = Object.fromEntries(load.statuses)
  t.same(Object.keys(statuses), ['200'], `every real notification was answered 200 (${JSON.stringify(statuses)})`)
  t.ok(load.acknowledged.size > 0, `${load.acknowledged.size} notifications acknowledged meanwhile`)

  // The load's own idle connections go after undici's 4 s; then only the
  // listener and storehook's connections to the target remain.
  const deadline = Date.now() + 20_000
  let now = openSockets(pid)
  while (now > baseline + 4 && Date.now() < deadline) {
    await sleep(100)
    now = openSockets(pid)
  }
  t.ok(now <= baseline + 4, `open sockets fell back to ${now} (${baseline} before, ${peak} at the peak)`)

  const until = Date.now() + 20_000
  while (missing(load.acknowledged, target).length > 0 && Date.now() < until) await sleep(50)
  t.same(missing(load.acknowledged, target), [], 'every acknowledged notification was delivered')
  t.same(altered(load.acknowledged, target), [], 'and each reached it byte for byte (SHA-256)')
  const db = new Database(dbPath, { readonly: true })
  t.teardown(() => db.close())
  const ids = (db.prepare('SELECT id FROM notifications').all() as Array<{ id: string }>).map((r) => r.id)
  t.equal(ids.length, load.acknowledged.size, 'as many stored as acknowledged: nothing half-received was stored')
  t.ok(ids.every((id) => load.acknowledged.has(id)), 'and each stored one is an acknowledged one')
})
