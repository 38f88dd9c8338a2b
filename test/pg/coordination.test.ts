// Several storehook instances on one PostgreSQL database coordinating
// (src/outbox/pg/coordination.ts): wake-ups by LISTEN/NOTIFY, and background
// jobs one instance at a time by advisory locks. Real servers, real HTTP.
import pg from 'pg'
import { pino } from 'pino'
import t from 'tap'
import type { TargetConfig } from '../../src/config.ts'
import { Dispatcher } from '../../src/delivery/dispatcher.ts'
import { TargetWorker } from '../../src/delivery/worker.ts'
import { dedupeKeyOf, type NewNotification, type Storage } from '../../src/outbox/engine.ts'
import { MAX_UNPROVEN_CHAINS } from '../../src/outbox/bodies.ts'
import { openPgStorage, type PgStorage } from '../../src/outbox/pg/engine.ts'
import { startApp, until } from '../helpers/app.ts'
import { makeChain, signNotification } from '../helpers/apple-chain.ts'
import { appleWorld } from '../helpers/apple-keys.ts'
import { freshDatabase, postgresUnavailable, startPostgres, type Cluster } from '../helpers/postgres.ts'
import { startTarget } from '../helpers/target.ts'

type T = { teardown: (fn: () => void | Promise<void>) => void }

const unavailable = postgresUnavailable()
let cluster: Cluster | null = null
t.teardown(async () => { await cluster?.stop() })

let seq = 0
function notification (): NewNotification {
  const id = `0191${String(++seq).padStart(8, '0')}-0000-7000-8000-000000000000`
  const body = Buffer.from(`{"signedPayload":"a.${id}.c"}`)
  return {
    id, dedupeKey: dedupeKeyOf(id, body), receivedAt: Date.now(), source: 'webhook', version: 2,
    notificationUuid: id, notificationType: 'DID_RENEW', environment: 'Production', bundleId: 'com.example', verification: 'unverified', body
  }
}

// What a log line says, kept for the test to read.
function logs (): { lines: Array<{ level: string; msg: string }>; log: { info: (o: unknown, m?: string) => void; warn: (o: unknown, m?: string) => void } } {
  const lines: Array<{ level: string; msg: string }> = []
  const entry = (level: string) => (o: unknown, m?: string): void => { lines.push({ level, msg: typeof o === 'string' ? o : m ?? '' }) }
  return { lines, log: { info: entry('info'), warn: entry('warn') } }
}

async function instances (t: T, n: number, log?: ReturnType<typeof logs>['log']): Promise<{ url: string; s: PgStorage[] }> {
  cluster ??= await startPostgres()
  const url = await freshDatabase(cluster)
  const s: PgStorage[] = []
  for (let i = 0; i < n; i++) {
    const { outbox } = await openPgStorage({ url, listenRetryMs: { min: 20, max: 200 }, ...(log !== undefined ? { log } : {}) })
    t.teardown(() => outbox.close())
    s.push(outbox)
  }
  return { url, s }
}

// The next wake-up a storage's listeners get.
function nextWake (s: Storage): Promise<{ targets: readonly string[]; seenFrom: number }> {
  return new Promise((resolve) => {
    const off = s.onEnqueued((targets, seenFrom) => { off(); resolve({ targets, seenFrom }) })
  })
}

t.test('wake-ups between instances (LISTEN/NOTIFY)', { skip: unavailable ?? false }, async (t) => {
  t.test('an enqueue on one instance wakes the others for the targets left to claim; an instance ignores its own', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    const onA: Array<readonly string[]> = []
    a!.onEnqueued((targets) => { onA.push(targets) })
    const woken = nextWake(b!)
    await a!.enqueue(notification(), ['x', 'y'], [['x', Date.now() + 60_000]])
    const w = await woken
    t.same(w.targets, ['y'], 'the leased target is the enqueuer\'s; only the other is woken')
    t.ok(w.seenFrom <= b!.sequence(), 'committed already: a claim numbered from now on sees it')
    t.equal((await b!.claim('y', 10, 60_000)).length, 1, 'b claims the row it was woken for')

    // a's listener gets every notification in commit order: once it has
    // b's, it has had (and ignored) its own two.
    t.equal((await Promise.all([nextWake(b!), a!.enqueue(notification(), ['z'], [])]))[0].targets[0], 'z')
    const fromB = nextWake(a!)
    await b!.replay((await a!.matchingIds({}, 10))[0]!, ['w'])
    t.same((await fromB).targets, ['w'], 'a replay on b wakes a')
    t.same(onA, [['y'], ['z'], ['w']], 'a was woken for its own enqueues once, in process, and once for b\'s replay')
  })

  t.test('a delivery given back wakes the other instances: one stopping hands over at once', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    await a!.enqueue(notification(), ['x'], [])
    const [c] = await a!.claim('x', 1, 60_000)
    const woken = nextWake(b!)
    t.equal(await a!.release(c!.deliveryId, c!.fence), true)
    t.same((await woken).targets, ['x'])
    t.equal((await b!.claim('x', 1, 60_000)).length, 1)
  })

  t.test('a NOTIFY is sent with the transaction: a write that rolls back wakes no one', async (t) => {
    const { url, s: [a, b] } = await instances(t, 2)
    const onB: Array<readonly string[]> = []
    b!.onEnqueued((targets) => { onB.push(targets) })
    // A trigger that refuses deliveries to 'refused' fails the enqueue after its NOTIFY was queued.
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.teardown(() => admin.end())
    await admin.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.target = 'refused' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse AFTER INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse()`)
    await t.rejects(a!.enqueue(notification(), ['refused'], []))
    const woken = nextWake(b!)
    await a!.enqueue(notification(), ['after'], [])
    await woken
    t.same(onB, [['after']], 'only the committed enqueue woke b')
  })

  t.test('a listener whose connection breaks reconnects, logs once, and wakes every target with pending rows', async (t) => {
    const { lines, log } = logs()
    const { url, s: [a, b] } = await instances(t, 2, log)
    await a!.enqueue(notification(), ['x'], [])
    await a!.enqueue(notification(), ['y'], [])
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.teardown(() => admin.end())
    const before = b!.listener.connections
    const back = b!.listener.nextConnection()
    const woken = nextWake(b!)
    const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE \'LISTEN%\'')
    t.equal(rowCount, 2, 'both instances\' listening connections were cut')
    await back
    t.equal(b!.listener.connections, before + 1)
    t.same([...(await woken).targets].sort(), ['x', 'y'], 'every target with pending rows, since what was notified meanwhile is lost')
    // Listening again: a's next enqueue reaches b.
    const again = nextWake(b!)
    await a!.enqueue(notification(), ['z'], [])
    t.same((await again).targets, ['z'])
    t.same(lines.filter((l) => l.level === 'warn').length, 2, 'one warning per instance for the outage')
  })

  t.test('a database restart: the listener retries with backoff while it is down, logs the outage once, and listens again when it is back', async (t) => {
    // A cluster of its own: this one is stopped and started.
    const own = await startPostgres()
    t.teardown(() => own.stop())
    const url = await freshDatabase(own)
    const { lines, log } = logs()
    const { outbox: a } = await openPgStorage({ url, listenRetryMs: { min: 20, max: 200 }, connectTimeoutMs: 2_000, statementTimeoutMs: 2_000 })
    const { outbox: b } = await openPgStorage({ url, log, listenRetryMs: { min: 20, max: 200 }, connectTimeoutMs: 2_000, statementTimeoutMs: 2_000 })
    t.teardown(async () => { await a.close(); await b.close() })
    await a.enqueue(notification(), ['x'], [])
    const back = b.listener.nextConnection()
    // Nothing else is stored while the database is down: the next wake-up is the one after reconnecting.
    const woken = nextWake(b)
    await own.restart(async () => {
      await until(() => b.listener.failedAttempts >= 3, 10_000, 'reconnects to fail while the database is down')
    })
    await back
    t.same((await woken).targets, ['x'], 'every target with pending rows is woken once it listens again')
    // a's pool may hold a connection the restart broke: its first enqueue can fail.
    const reached = new Promise<void>((resolve) => { b.onEnqueued((targets) => { if (targets.includes('y')) resolve() }) })
    let stored = false
    for (let i = 0; i < 12 && !stored; i++) stored = await a.enqueue(notification(), ['y'], []).then(() => true, () => false)
    t.ok(stored)
    await reached
    t.pass('a\'s next enqueue reaches b')
    t.equal(lines.filter((l) => l.level === 'warn').length, 1, `the outage logged once, not per failed attempt (${b.listener.failedAttempts})`)
    t.equal(lines.filter((l) => l.level === 'info').length, 1, 'and its end once')
  })

  t.test('a target list too long for one payload wakes every target with pending rows', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    const many = Array.from({ length: 200 }, (_, i) => `target-with-a-long-configured-name-${i}`)
    const woken = nextWake(b!)
    await a!.enqueue(notification(), many, [])
    t.equal((await woken).targets.length, 200)
  })

  t.test('a notification stored by an instance whose worker cannot take it is delivered by another instance at once, not at its poll', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    const receiver = await startTarget()
    t.teardown(() => receiver.close())
    const target: TargetConfig = {
      name: 'x', url: receiver.url, headers: {}, timeoutMs: 5_000, concurrency: 2, signingSecret: null, payload: 'apple',
      filters: { environments: null, notificationTypes: null, bundleIds: null }
    }
    // b's worker starts, claims nothing, reads that nothing is due and sleeps
    // for its poll (an hour): from then on only a wake-up brings it back.
    let asleep: () => void = () => {}
    const sleeping = new Promise<void>((resolve) => { asleep = resolve })
    const watched = new Proxy(b!, {
      get (s, prop) {
        const v = Reflect.get(s, prop) as unknown
        if (prop === 'nextDueAt') return (name: string) => s.nextDueAt(name).finally(asleep)
        return typeof v === 'function' ? v.bind(s) : v
      }
    })
    const worker = new TargetWorker({
      target, outbox: watched, log: pino({ level: 'silent' }), pollIntervalMs: 3_600_000,
      retry: { minDelayMs: 20, maxDelayMs: 200, giveUpAfterMs: 3_600_000 }
    })
    const onB = new Dispatcher(b!, new Map([['x', worker]]))
    onB.listen()
    worker.start()
    t.teardown(async () => { onB.close(); await worker.stop(1_000) })
    await sleeping
    // a has no worker for x (as the CLI, or an instance with no free slot): the row is left to claim.
    const n = notification()
    const stored = await new Dispatcher(a!).dispatch(n, ['x'])
    t.same(stored.leased, [], 'a kept nothing for itself')
    const [got] = await receiver.waitFor(1, 10_000)
    t.same(got!.body, n.body, 'b delivered it, woken by a\'s commit')
  })
})

t.test('background jobs one instance at a time (advisory locks)', { skip: unavailable ?? false }, async (t) => {
  t.test('while one instance runs a job, another skips the same job, not others; once it ends (or fails) the other can run it', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    let finish: () => void = () => {}
    const running = new Promise<void>((resolve) => { finish = resolve })
    let started: () => void = () => {}
    const holding = new Promise<void>((resolve) => { started = resolve })
    const onA = a!.tryExclusive('catch-up', async () => { started(); await running; return 'a ran' })
    await holding
    let ranOnB = 0
    t.same(await b!.tryExclusive('catch-up', async () => ++ranOnB), { ran: false }, 'b skips while a runs it')
    t.same(await a!.tryExclusive('catch-up', async () => ++ranOnB), { ran: false }, 'so does a second run on a itself')
    t.same(await b!.tryExclusive('retention', async () => 'other job'), { ran: true, value: 'other job' }, 'another job runs meanwhile')
    finish()
    t.same(await onA, { ran: true, value: 'a ran' })
    t.same(await b!.tryExclusive('catch-up', async () => ++ranOnB), { ran: true, value: 1 }, 'b runs it once a is done')
    await t.rejects(a!.tryExclusive('catch-up', async () => { throw new Error('job failed') }), /job failed/)
    t.same(await b!.tryExclusive('catch-up', async () => ++ranOnB), { ran: true, value: 2 }, 'a failed job frees the lock')
  })

  t.test('a job holding its lock leaves the pool to everything else: with a pool of one, ops run inside the job', async (t) => {
    cluster ??= await startPostgres()
    const { outbox } = await openPgStorage({ url: await freshDatabase(cluster), max: 1, connectTimeoutMs: 2_000 })
    t.teardown(() => outbox.close())
    const r = await outbox.tryExclusive('probe:x', () => outbox.enqueue(notification(), ['x'], []))
    t.match(r, { ran: true, value: { duplicate: false } })
  })

  t.test('quarantine caps hold with two instances quarantining at once: the totals row\'s lock serialises them', async (t) => {
    const { s: [a, b] } = await instances(t, 2)
    const caps = { maxItems: 5, maxBytes: 1_000_000 }
    const row = () => ({ receivedAt: Date.now(), code: 'SIGNATURE_INVALID', reason: 'bad signature', body: Buffer.from('x'.repeat(100)), bytes: 0 })
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a! : b!).quarantine(row(), caps)))
    t.equal((await a!.quarantineSize()).items, 5, 'the cap, not more')
    t.equal((await b!.listQuarantine(100, null)).length, 5, 'the totals agree with the rows')
  })

  t.test('two instances started together on one database: one catches up from Apple, the other skips', async (t) => {
    cluster ??= await startPostgres()
    const url = await freshDatabase(cluster)
    const { api, pki, target } = await appleWorld(t)
    const env = { ...pki.env, FORWARD_TARGETS: target.url, DATABASE_URL: url, CATCH_UP_INTERVAL_MS: '0' }
    // a's first history request is held: a is catching up, and holds the lock, while b starts.
    api.holdFrom(0)
    const a = await startApp(t, env)
    await until(() => api.held() === 1, 10_000, 'a\'s catch-up to ask Apple')
    const b = await startApp(t, env)
    await until(() => b.logs.join('').includes('Another instance is catching up; skipped this run.'), 10_000, 'b to skip')
    api.release()
    await until(async () => (await a.app.outbox.lastCatchUps()).filter((r) => r.finishedAt !== null).length === 2, 10_000, 'a\'s runs, one per environment')
    t.equal(api.requests.filter((q) => q.path.startsWith('/inApps/v1/notifications/history')).length, 2, 'Apple was asked once per environment, by a alone')
    t.notMatch(a.logs.join(''), /Another instance is catching up/)
  })
})

t.test('a failing target is probed by one instance at a time', { skip: unavailable ?? false }, async (t) => {
  const { s: [a, b] } = await instances(t, 2)
  // Down: every request fails, after a while on the wire so that overlaps
  // show. Each instance's requests name it (?i=), so the target can tell
  // when each has turned to probing.
  let onWire = 0
  let most = 0
  let measuring = false
  const arrived = [0, 0]
  // Per instance: how many of its requests had arrived when it found the target failing; null before.
  const turnedAt: Array<number | null> = [null, null]
  const receiver = await startTarget((req, _n, res) => {
    const i = Number(new URL(req.url, 'http://x').searchParams.get('i'))
    arrived[i]!++
    onWire++
    if (measuring) most = Math.max(most, onWire)
    setTimeout(() => {
      onWire--
      // From the moment both instances probe and nothing sent before is on
      // the wire, every request is a probe. An instance's last request
      // before probing may have started just before it turned (its next
      // was ready as the failure came in): it is the first to arrive after.
      if (!measuring && onWire === 0 && turnedAt.every((at, k) => at !== null && arrived[k]! > at)) measuring = true
      res.writeHead(500).end()
    }, 150)
  })
  t.teardown(() => receiver.close())
  const target: TargetConfig = {
    // One at a time per instance: at most one request of its own still on its way once it turns to probing.
    name: 'x', url: receiver.url, headers: {}, timeoutMs: 5_000, concurrency: 1, signingSecret: null, payload: 'apple',
    filters: { environments: null, notificationTypes: null, bundleIds: null }
  }
  const workers = [a!, b!].map((s, i) => new TargetWorker({
    target: { ...target, url: `${target.url}?i=${i}` },
    outbox: s,
    // The worker's log, read for the moment it turns to probing.
    log: pino({ level: 'warn' }, { write: (line: string) => { if (line.includes('Target is failing')) turnedAt[i] = arrived[i]! } }),
    pollIntervalMs: 50,
    retry: { minDelayMs: 20, maxDelayMs: 100, giveUpAfterMs: 3_600_000 }
  }))
  t.teardown(() => Promise.all(workers.map((w) => w.stop(1_000))))
  for (let i = 0; i < 30; i++) await a!.enqueue(notification(), ['x'], [])
  for (const w of workers) w.start()
  await until(() => measuring, 20_000, 'both instances to be probing')
  await receiver.waitFor(receiver.received.length + 8, 20_000)
  t.equal(most, 1, 'never two probes on the wire at once')
})

// A sender posting bodies with ever new certificate chains (VERIFY_SIGNATURES
// off) must not grow body_chains past its cap (src/outbox/bodies.ts), also
// when the bodies reach several instances at once: each instance's shared
// commit counts the rows, and without coordination both would add theirs.
t.test('the cap on unproven certificate chains holds across instances', { skip: unavailable ?? false }, async (t) => {
  const { url, s } = await instances(t, 2)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  // One below the cap, planted directly: the chains themselves do not matter here.
  await admin.query(`INSERT INTO body_chains (digest, chain, first_seen_at)
    SELECT md5(i::text) || md5((i + 1)::text), decode(md5(i::text), 'hex'), 0 FROM generate_series(1, $1::int) i`, [MAX_UNPROVEN_CHAINS - 1])
  const chains = Array.from({ length: 8 }, () => makeChain())
  const bodies: Buffer[] = []
  const stored = await Promise.all(chains.map((chain, i) => {
    const n = notification()
    const body = Buffer.from(JSON.stringify({ signedPayload: signNotification(chain) }))
    bodies.push(body)
    return s[i % 2]!.enqueue({ ...n, dedupeKey: dedupeKeyOf(n.id, body), body }, [], []).then(() => n.id)
  }))
  const { rows: [count] } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM body_chains')
  t.equal(Number(count?.n), MAX_UNPROVEN_CHAINS, `${stored.length} new chains through two instances at once: the table stops at the cap`)
  for (const [i, id] of stored.entries()) {
    const row = await s[0]!.getNotification(id)
    t.ok(row?.notification.body?.equals(bodies[i]!), `body ${i + 1} reads back byte for byte`)
  }
})
