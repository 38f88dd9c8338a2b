// A burst of 1 MB bodies nested as deep as the body limit allows, against the
// real program (a child process, VERIFY_SIGNATURES=enforce, a live target),
// with well-formed notifications between them. Security review, finding 4:
// every deep one is a 400 BODY_TOO_DEEP, none is stored or forwarded, the
// well-formed ones all go through, and memory stays bounded.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ADMIN_TOKEN, api } from '../helpers/admin.ts'
import { tempDir, until } from '../helpers/app.ts'
import { makeChain, makeRoot, notificationPayload, signNotification } from '../helpers/apple-chain.ts'
import { QUICK } from '../helpers/ledger.ts'
import { spawnEnforcing } from '../helpers/process.ts'
import { startTarget } from '../helpers/target.ts'

const MB = 1_048_576
const COUNT = Number(process.env.DEEP_COUNT ?? (QUICK ? 40 : 400))
const SECRET = 'deep-nesting-shared-secret'
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

t.test(`${COUNT} bodies nested to 1 MB: all 400 BODY_TOO_DEEP, nothing stored or forwarded, well-formed ones still pass, memory bounded`, async (t) => {
  const root = makeRoot()
  const chain = makeChain({ root })
  const target = await startTarget()
  t.teardown(target.close)
  const server = await spawnEnforcing(tempDir(t), { rootPem: root.pem, sharedSecret: SECRET, target: target.url, bodyLimitBytes: MB }, { ADMIN_TOKEN })
  t.teardown(() => server.kill('SIGTERM'))

  const v1Head = `{"notification_type":"DID_RENEW","password":"${SECRET}","x":`
  const balanced = (room: number): string => '['.repeat(Math.floor(room / 2)) + ']'.repeat(Math.floor(room / 2))
  // The deep payload is signed by the trusted chain: only its depth is wrong.
  const deepPayload = Buffer.from(`{"notificationType":"TEST","data":${balanced(MB * 0.7)}}`).toString('base64url')
  const deepSigned = JSON.stringify({ signedPayload: signNotification(chain, deepPayload) })
  const kinds: Array<[string, string]> = [
    ['1 MB of "["', '['.repeat(MB)],
    ['V1, balanced to 1 MB', `${v1Head}${balanced(MB - v1Head.length - 2)}}`],
    ['V1, "[" to 1 MB', `${v1Head}${'['.repeat(MB - v1Head.length)}`],
    ['signedPayload, payload balanced deep, validly signed', deepSigned]
  ]
  for (const [name, body] of kinds) t.ok(Buffer.byteLength(body) <= MB, `${name}: ${Buffer.byteLength(body)} bytes, within the limit`)

  const statuses = new Map<string, number>()
  const bad: string[] = []
  const goodIds: string[] = []
  let slowest = 0
  let rssAfterFirst = 0
  let i = 0
  const worker = async (): Promise<void> => {
    while (i < COUNT) {
      const n = i++
      // Every fifth request is a genuine notification.
      const good = n % 5 === 4
      const [kind, body] = good
        ? ['well-formed', JSON.stringify({ signedPayload: signNotification(chain, notificationPayload()) })]
        : kinds[n % kinds.length]!
      const started = performance.now()
      const res = await fetch(`${server.url}/apple/notifications`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
      const json = await res.json() as { id?: string; code?: string }
      if (!good) slowest = Math.max(slowest, performance.now() - started)
      const key = `${kind}: ${res.status} ${json.code ?? ''}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      if (good ? res.status !== 200 : res.status !== 400 || json.code !== 'BODY_TOO_DEEP') bad.push(`#${n} (${kind}) answered ${res.status} ${JSON.stringify(json).slice(0, 200)}`)
      if (good && json.id !== undefined) goodIds.push(json.id)
      if (n === 19) rssAfterFirst = rssMb(server.child.pid!)
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  const rssEnd = rssMb(server.child.pid!)
  t.comment([...statuses].sort().map(([k, v]) => `${k} x${v}`).join('; '))
  t.comment(`slowest refusal ${slowest.toFixed(0)} ms; RSS ${rssAfterFirst.toFixed(0)} MB after 20 bodies, ${rssEnd.toFixed(0)} MB after ${COUNT}`)
  t.same(bad.slice(0, 20), [], 'every deep body 400 BODY_TOO_DEEP, every well-formed one 200')
  t.equal(server.child.exitCode, null, 'the server never crashed')

  // Facts, not a sleep: the target gets the well-formed ones, and only those.
  await until(() => target.received.length >= goodIds.length, 30_000, 'the well-formed notifications forwarded')
  t.same(target.received.map((r) => r.headers['x-storehook-notification-id']).sort(), [...goodIds].sort(), 'the target got exactly the well-formed ones')
  const listed = await api(server.url, '/notifications?limit=500')
  t.equal(listed.status, 200)
  t.same(listed.json.items.map((item: { id: string }) => item.id).sort(), [...goodIds].sort(), 'nothing refused was stored')
  t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'and it still answers')
  // Generous: the heap may grow into its working size, not with the count.
  t.ok(rssEnd < rssAfterFirst * 1.5 + 60, 'RSS bounded')
  t.notMatch(server.lines.join('\n'), SECRET, 'the shared secret never reached the logs')
})
