// Senders that trickle their body or vanish halfway: nothing half-received is
// stored, the server keeps answering everyone else.
import { connect } from 'node:net'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp, until } from '../helpers/app.ts'
import { sleep } from '../helpers/ledger.ts'
import { v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

const rows = (s: Awaited<ReturnType<typeof startApp>>): number => s.db.get<{ n: number }>(sql`SELECT count(*) AS n FROM notifications`)!.n

function open (url: string, length: number): ReturnType<typeof connect> {
  const u = new URL(url)
  const socket = connect(Number(u.port), u.hostname)
  socket.on('error', () => {})
  socket.write(`POST /apple/notifications HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`)
  return socket
}

t.test('fifty clients that disconnect mid-body: no row, no crash, others still served', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const sockets = Array.from({ length: 50 }, () => {
    const body = v2Body({ padTo: 8000 })
    const socket = open(s.url, body.length)
    socket.write(body.subarray(0, Math.floor(body.length * Math.random())))
    return socket
  })
  await sleep(100)
  for (const socket of sockets) socket.destroy()
  await sleep(100)
  t.equal(rows(s), 0, 'nothing half-received was stored')
  t.equal((await s.post(v2Body())).status, 200, 'a whole notification is still accepted')
  await target.waitFor(1)
  await sleep(200)
  t.equal(target.received.length, 1, 'only the whole one was forwarded')
})

t.test('a client that trickles its body does not hold up others, and is stored once complete', async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const s = await startApp(t, { FORWARD_TARGETS: target.url })
  const body = v2Body({ padTo: 2000 })
  const socket = open(s.url, body.length)
  const answer: Buffer[] = []
  socket.on('data', (c: Buffer) => answer.push(c))
  const chunk = Math.ceil(body.length / 20)
  let sent = 0
  const trickle = (async () => {
    for (; sent < body.length; sent += chunk) {
      socket.write(body.subarray(sent, sent + chunk))
      await sleep(100)
    }
  })()
  // While the trickle runs (~2 s), others are answered at once.
  const started = Date.now()
  const others = await Promise.all(Array.from({ length: 10 }, () => s.post(v2Body())))
  t.ok(others.every((r) => r.status === 200), 'ten others answered 200 meanwhile')
  t.ok(Date.now() - started < 1500, `without waiting for the trickle (${Date.now() - started} ms)`)
  t.equal(rows(s), 10, 'the trickling one is not stored before it is complete')
  await trickle
  await until(() => answer.length > 0, 5000, 'the answer to the trickled body')
  t.match(Buffer.concat(answer).toString(), /^HTTP\/1\.1 200/, 'the trickled body answered 200 once complete')
  socket.destroy()
  t.equal(rows(s), 11)
})

t.test('a client that stalls mid-body and leaves: nothing stored', async (t) => {
  const s = await startApp(t)
  const body = v2Body()
  const socket = open(s.url, body.length)
  socket.write(body.subarray(0, 100))
  await sleep(500)
  socket.end()
  await sleep(200)
  t.equal(rows(s), 0)
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'still healthy')
})
