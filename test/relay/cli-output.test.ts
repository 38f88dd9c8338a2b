// What the CLI prints came from senders: under enforce any stranger can put a
// row in the quarantine with a well-formed JWS of an untrusted chain. Its
// fields must reach the operator's terminal as text, not as escape sequences.
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { startApp } from '../helpers/app.ts'
import { makeChain, notificationPayload, signNotification } from '../helpers/apple-chain.ts'
import { runCli } from '../helpers/process.ts'

// ESC, OSC (retitle the window), BEL, clear screen, colours; DEL and a C1 CSI; a bidi override.
const HOSTILE = '\x1b]0;owned\x07\x1b[2J\x1b[31mFAKE\x1b[0m\x7f\x9b\u202e'

t.test('quarantine list and status print stored values with control characters escaped, each field bounded', async (t) => {
  const s = await startApp(t, { VERIFY_SIGNATURES: 'enforce' })
  const forged = notificationPayload({ notificationUUID: randomUUID() })
  forged.notificationType = `${HOSTILE}TYPE`
  ;(forged.data as Record<string, unknown>).bundleId = `com.${HOSTILE}`
  const answer = await s.post(JSON.stringify({ signedPayload: signNotification(makeChain(), forged) }))
  t.equal(answer.status, 403, 'refused: the chain is not trusted')
  t.equal((await s.facts.get<{ n: number }>(sql`SELECT count(*) AS n FROM quarantine`))!.n, 1, 'and quarantined')
  // A V1 row with the same bytes, as VERIFY_SIGNATURES=off would store it, reaches `status`.
  const off = await startApp(t, { DATABASE_PATH: s.config.databasePath, VERIFY_SIGNATURES: 'off' })
  t.equal((await off.post(JSON.stringify({ notification_type: `${HOSTILE}X`, environment: `Sandbox${HOSTILE}` }))).status, 200)
  // A reason the size of what an older version let through.
  await s.facts.run(sql`UPDATE quarantine SET reason = ${'r'.repeat(100_000)}`)

  const env = s.env
  for (const args of [['quarantine', 'list'], ['status']]) {
    const out = await runCli(args, env)
    t.equal(out.code, 0, out.stderr)
    t.notMatch(out.stdout, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/, `${args.join(' ')}: no control character reaches the terminal`)
    t.match(out.stdout, /\\u001b\]0;owned\\u0007/, `${args.join(' ')}: the escape sequence is shown as text`)
    t.ok(out.stdout.split('\n').every((line) => line.length < 2000), `${args.join(' ')}: every line is bounded`)
  }
})
