// Security review, finding 2: every label value fed by a payload comes from
// Apple's documented vocabulary; anything else is `other`. Before, 2,000 V1
// posts with made-up types and environments made 2,000+ series, and the
// last-received gauge brought them back from the database after a restart.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startApp, tempDir } from '../helpers/app.ts'
import { labelValues, scrape, seriesLines } from '../helpers/metrics.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'

const POSTS = 2000
// Upper-case with underscores: what the old fold let through.
const madeUpType = (): string => 'ZZ_' + [...randomBytes(10)].map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_'[b % 27]).join('')
const madeUpEnvironment = (): string => 'env-' + randomBytes(6).toString('hex')

// A scrape whose size does not depend on what senders posted: the process
// metrics, the fixed vocabulary and a few targets fit well inside these.
const MAX_SERIES = 300
const MAX_BYTES = 64 * 1024

function checkBounded (t: Test, text: string, what: string): void {
  const series = seriesLines(text).length
  t.ok(series <= MAX_SERIES, `${what}: ${series} series <= ${MAX_SERIES}`)
  t.ok(text.length <= MAX_BYTES, `${what}: ${text.length} bytes <= ${MAX_BYTES}`)
  for (const label of ['type', 'environment']) {
    const made = [...labelValues(text, 'storehook_notifications_received_total', label)].filter((v) => v.startsWith('ZZ_') || v.startsWith('env-'))
    t.same(made, [], `${what}: no made-up ${label} is a label value of the received counter`)
  }
  const environments = [...labelValues(text, 'storehook_last_received_timestamp_seconds', 'environment')].filter((v) => v.startsWith('env-'))
  t.same(environments, [], `${what}: no made-up environment is a label value of the last-received gauge`)
}

t.test('2,000 V1 posts with made-up types and environments: /metrics stays bounded, also after a restart', async (t) => {
  const env = { DATABASE_PATH: join(tempDir(t), 'storehook.db') }
  const s = await startApp(t, env)
  // Documented values keep their own name.
  t.equal((await s.post(v1Body({ type: 'INITIAL_BUY', environment: 'Sandbox' }))).status, 200)
  t.equal((await s.post(v1Body({ type: 'DID_RENEW', environment: 'PROD' }))).status, 200)
  t.equal((await s.post(v2Body({ notificationType: 'SUBSCRIBED', subtype: 'RESUBSCRIBE', environment: 'Xcode' }))).status, 200)
  for (let i = 0; i < POSTS; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => s.post(v1Body({ type: madeUpType(), environment: madeUpEnvironment() }))))
    t.same(batch.filter((r) => r.status !== 200).map((r) => r.status), [], `batch ${i / 50}: every post accepted`)
  }
  const before = await scrape(s.url)
  checkBounded(t, before, 'after 2,000 posts')
  t.match(before, /storehook_notifications_received_total\{version="1",environment="Sandbox",type="INITIAL_BUY",verification="unchecked",outcome="stored"\} 1/)
  t.match(before, /storehook_notifications_received_total\{version="1",environment="Production",type="DID_RENEW",verification="unchecked",outcome="stored"\} 1/)
  t.match(before, /storehook_notifications_received_total\{version="2",environment="Xcode",type="SUBSCRIBED",verification="unchecked",outcome="stored"\} 1/)
  t.match(before, /storehook_notifications_received_total\{version="1",environment="other",type="other",verification="unchecked",outcome="stored"\} 2000/)
  await s.close()

  const again = await startApp(t, env)
  const after = await scrape(again.url)
  checkBounded(t, after, 'after a restart on the same file')
  for (const environment of ['Sandbox', 'Production', 'Xcode', 'other']) {
    t.match(after, new RegExp(`storehook_last_received_timestamp_seconds\\{environment="${environment}"\\} \\d+`), `last received in ${environment}`)
  }
})
