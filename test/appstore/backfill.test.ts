import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, until } from '../helpers/app.ts'
import { settled, tally } from '../helpers/facts.ts'
import { startAppleApi } from '../helpers/apple-api.ts'
import { makeChain, notificationPayload, signNotification } from '../helpers/apple-chain.ts'
import { applePki, appleWorld } from '../helpers/apple-keys.ts'
import { BIN, runCli } from '../helpers/process.ts'

const body = (signedPayload: string): string => JSON.stringify({ signedPayload })

t.test('backfill pages through the history, skips what storehook has, quarantines what it refuses; the server forwards the rest', async (t) => {
  const { api, pki, target } = await appleWorld(t)
  const s = await startApp(t, { ...pki.verifyEnv, FORWARD_TARGETS: target.url })

  // Two that reached storehook already, 43 it missed, one signed under a root it does not trust.
  const had = [pki.sign(), pki.sign()]
  for (const p of had) t.equal((await s.post(body(p))).status, 200)
  await target.waitFor(2)
  const base = Date.now() - 3_600_000
  for (let i = 0; i < 43; i++) api.add(pki.sign(), { signedDate: base + i * 1000 })
  api.add(had[0]!, { signedDate: base + 50_000 })
  api.add(had[1]!, { signedDate: base + 51_000 })
  api.add(signNotification(makeChain(), { ...notificationPayload(), notificationType: 'DID_RENEW' }), { signedDate: base + 52_000 })

  // The CLI runs on the server's configuration: same database, same targets.
  const cliEnv = { ...pki.env, ...s.env, FORWARD_TARGETS: target.url }
  const r = await runCli(['backfill', '--since', '2h', '--environment', 'Sandbox'], cliEnv)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /Sandbox com\.example: page 1, 20 seen: 20 new, 0 already had, 0 refused\n.*page 2, 40 seen[\s\S]*page 3, 46 seen: 43 new, 2 already had, 1 refused/)
  t.match(r.stdout, /Backfill done: 46 seen: 43 new, 2 already had, 1 refused\./)
  const history = api.requests.filter((q) => q.path.startsWith('/inApps/v1/notifications/history'))
  t.equal(history.length, 3, 'three pages of 20')
  t.notOk(history[0]!.path.includes('paginationToken'), 'the first page has no token')
  t.ok(history[1]!.path.includes('paginationToken=') && history[2]!.path.includes('paginationToken='), 'later pages carry the token')
  t.equal(history[0]!.body!.onlyFailures, undefined, 'everything, not only failures, unless asked')
  t.ok(Math.abs(Number(history[0]!.body!.startDate) - (Date.now() - 7_200_000)) < 60_000, 'startDate is --since')

  // The CLI has exited: every row it wrote is in the file, and settled rows
  // are every request the target will get.
  await settled(s, 15_000)
  t.same(await tally(s), { deliveries: 45, delivered: 45, dead: 0, pending: 0, attempts: 45, recorded: 45 })
  t.equal(target.received.length, 45, 'the running server forwarded the 43 new ones, once each')
  t.same(await s.facts.all(sql`SELECT source, verification, count(*) AS n FROM notifications GROUP BY source, verification ORDER BY source`),
    [{ source: 'backfill', verification: 'verified', n: 43 }, { source: 'webhook', verification: 'verified', n: 2 }], 'verified as the route verifies')
  t.same(await s.facts.all(sql`SELECT code FROM quarantine`), [{ code: 'SIGNATURE_INVALID' }], 'the forgery is quarantined')
  t.match(await s.facts.get(sql`SELECT kind, pages, seen, added, already, refused, finished_at IS NOT NULL AS finished, pagination_token FROM history_runs`),
    { kind: 'backfill', pages: 3, seen: 46, added: 43, already: 2, refused: 1, finished: 1, pagination_token: null })

  const again = await runCli(['backfill', '--since', '2h', '--environment', 'Sandbox', '--only-failures'], cliEnv)
  t.match(again.stdout, /Backfill done: 46 seen: 0 new, 45 already had, 1 refused\./, 'a second run adds nothing')
  t.equal(api.requests.at(-1)!.body!.onlyFailures, true, '--only-failures is passed on')
})

t.test('an interrupted backfill resumes from its last page', async (t) => {
  const api = await startAppleApi()
  t.teardown(api.close)
  const pki = applePki(t, api.url)
  const s = await startApp(t, pki.verifyEnv)
  const env = { PATH: process.env.PATH ?? '', ...pki.env, ...s.env }
  const base = Date.now() - 3_600_000
  for (let i = 0; i < 50; i++) api.add(pki.sign(), { signedDate: base + i * 1000 })
  api.holdFrom(1)

  const child = spawn(process.execPath, [BIN, 'backfill', '--since', '3h', '--environment', 'Sandbox'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  await until(() => api.held() === 1, 15_000, 'the second page to be asked for')
  child.kill('SIGKILL')
  await once(child, 'exit')
  t.match(stderr, /page 1, 20 seen: 20 new/)
  t.notMatch(stderr, /page 2/)
  const row = await s.facts.get<{ pages: number; token: string | null; finished: number | null }>(sql`SELECT pages, pagination_token AS token, finished_at AS finished FROM history_runs`)
  t.match(row, { pages: 1, finished: null }, 'the run is saved as unfinished after page 1')
  t.type(row!.token, 'string', 'with the token for page 2')
  api.release()

  const before = api.requests.length
  const r = await runCli(['backfill', '--since', '3h', '--environment', 'Sandbox'], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /resuming the interrupted run from page 2 \(20 seen: 20 new/)
  t.match(r.stdout, /Backfill done: 50 seen: 50 new, 0 already had, 0 refused\./, 'the summary adds up across both runs')
  const resumed = api.requests.slice(before).find((q) => q.path.startsWith('/inApps/v1/notifications/history'))!
  t.ok(resumed.path.includes(`paginationToken=${encodeURIComponent(row!.token!)}`), 'the re-run starts from the stored token')
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`))!.n, 50)
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM history_runs`))!.n, 1, 'the same run continued, not a new one')
})

t.test('backfill explains missing keys, bad arguments and Apple refusing the key', async (t) => {
  const api = await startAppleApi({ bundleIds: ['com.other'] })
  t.teardown(api.close)
  const pki = applePki(t, api.url)
  const s = await startApp(t, pki.verifyEnv)
  const none = await runCli(['backfill', '--since', '1h'], s.env)
  t.equal(none.code, 1)
  t.match(none.stderr, /App Store Server API is not configured: set APPLE_ISSUER_ID/)
  const noSince = await runCli(['backfill'], { ...pki.env, ...s.env })
  t.match(noSince.stderr, /backfill needs --since/)
  const badEnv = await runCli(['backfill', '--since', '1h', '--environment', 'Xcode'], { ...pki.env, ...s.env })
  t.match(badEnv.stderr, /--environment must be Production, Sandbox or both/)
  const old = await runCli(['backfill', '--since', '400d'], { ...pki.env, ...s.env })
  t.equal(old.code, 1, 'the mock does not know this bundle ID: 401')
  t.match(old.stderr, /Production com\.example: warning: Apple keeps only 180 days/)
  t.match(old.stderr, /Sandbox com\.example: warning: Apple keeps only 30 days/)
  t.match(old.stdout, /Production com\.example: failed: App Store Server API Production answered 401 Unauthorized.*approved/)
  t.match(old.stdout, /Backfill incomplete/)
  t.notMatch(old.stdout + old.stderr, /eyJ/, 'no token in the output')
  void randomUUID
})
