// A flood of notifications whose types, subtypes, environments and bundle IDs
// are all made up (security review, finding 2): the /metrics scrape keeps the
// same series and about the same size however many distinct values arrive,
// accepted or refused, V1 or V2, while it runs and after a restart.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { startApp, tempDir } from '../helpers/app.ts'
import { QUICK } from '../helpers/ledger.ts'
import { scrape, seriesLines } from '../helpers/metrics.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

const COUNT = Number(process.env.CARDINALITY_COUNT ?? (QUICK ? 2000 : 20_000))
const CONCURRENCY = 50
const MAX_SERIES = 300
const MAX_BYTES = 64 * 1024
const ALLOWED = 'com.example.app'

const made = (prefix: string): string => prefix + randomBytes(8).toString('hex').toUpperCase()

// Every fourth body names a bundle ID that APPLE_BUNDLE_IDS refuses (403):
// refused payloads must not grow the scrape either.
function body (i: number): Buffer {
  const bundle = i % 4 === 3 ? made('com.flood.') : ALLOWED
  return i % 2 === 0
    ? v1Body({ type: made('ZZ_'), environment: made('env-'), bid: bundle })
    : v2Body({ notificationType: made('ZZ_'), subtype: made('SUB_'), environment: made('env-'), bundleId: bundle })
}

t.test(`${COUNT} notifications with made-up values: the scrape stays bounded in series and bytes`, async (t) => {
  const target = await startTarget()
  t.teardown(target.close)
  const env = { DATABASE_PATH: join(tempDir(t), 'storehook.db'), FORWARD_TARGETS: target.url, APPLE_BUNDLE_IDS: ALLOWED, LOG_LEVEL: 'warn' }
  const s = await startApp(t, env)
  const samples: Array<{ posted: number; series: number; bytes: number }> = []
  const statuses = new Map<number, number>()
  const started = Date.now()
  for (let posted = 0; posted < COUNT; posted += CONCURRENCY) {
    const answers = await Promise.all(Array.from({ length: Math.min(CONCURRENCY, COUNT - posted) }, (_, k) => s.post(body(posted + k))))
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
    if ((posted / CONCURRENCY) % 10 === 0) {
      const text = await scrape(s.url)
      samples.push({ posted, series: seriesLines(text).length, bytes: text.length })
    }
  }
  const text = await scrape(s.url)
  samples.push({ posted: COUNT, series: seriesLines(text).length, bytes: text.length })
  t.comment(`${COUNT} posts in ${Date.now() - started} ms; answers ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.comment(`scrape: ${samples[0]!.series} series / ${samples[0]!.bytes} bytes at first, ${samples.at(-1)!.series} / ${samples.at(-1)!.bytes} at the end`)
  t.same([...statuses.keys()].sort(), [200, 403], 'allowed bundles accepted, the others refused, no 5xx')
  const worst = samples.reduce((a, b) => ({ posted: 0, series: Math.max(a.series, b.series), bytes: Math.max(a.bytes, b.bytes) }))
  t.ok(worst.series <= MAX_SERIES, `at most ${worst.series} series <= ${MAX_SERIES}`)
  t.ok(worst.bytes <= MAX_BYTES, `at most ${worst.bytes} bytes <= ${MAX_BYTES}`)
  // After the first sample every label value the flood can reach exists:
  // from there on the series count must not move with the number of posts.
  const later = samples.slice(1).map((x) => x.series)
  t.ok(Math.max(...later) - Math.min(...later) <= 10, `series from the second sample on: ${Math.min(...later)}-${Math.max(...later)}`)
  t.notMatch(text, /ZZ_|env-|SUB_|com\.flood\./, 'no made-up value in the scrape')
  await s.close()

  const again = await startApp(t, env)
  const restored = await scrape(again.url)
  t.comment(`after a restart: ${seriesLines(restored).length} series / ${restored.length} bytes`)
  t.ok(seriesLines(restored).length <= MAX_SERIES, 'bounded after a restart on the same file')
  t.notMatch(restored, /ZZ_|env-|SUB_|com\.flood\./, 'nothing made up comes back from the database')
})
