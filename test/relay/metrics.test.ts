import t from 'tap'
import { startApp, until } from '../helpers/app.ts'
import { v1Body, v2Body } from '../helpers/notifications.ts'
import { startTarget } from '../helpers/target.ts'

async function scrape (url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  return res.text()
}

t.test('/metrics exposes received, deliveries, pending and oldest pending', async (t) => {
  const down = await startTarget()
  const url = down.url
  await down.close()
  const up = await startTarget()
  t.teardown(up.close)
  const s = await startApp(t, { FORWARD_TARGETS: `${up.url},${url}`, RETRY_MIN_DELAY_MS: '5000', RETRY_MAX_DELAY_MS: '5000' })
  await s.post(v2Body({ environment: 'Production', notificationType: 'DID_RENEW' }))
  await s.post(v1Body())
  await s.post('{"signedPayload":"a.b.c"}')
  await up.waitFor(2)
  const downHost = new URL(url).host
  await until(async () => (await scrape(s.url)).includes(`storehook_deliveries_total{target="${downHost}",outcome="retry"} 2`), 5000, 'two failed attempts')
  const text = await scrape(s.url)
  t.match(text, /storehook_notifications_received_total\{version="2",environment="Production",type="DID_RENEW",verification="unchecked",outcome="stored"\} 1/)
  t.match(text, /storehook_notifications_received_total\{version="1",environment="Production",type="DID_RENEW",verification="unchecked",outcome="stored"\} 1/)
  t.match(text, new RegExp(`storehook_deliveries_total\\{target="${up.url.split('/')[2]}",outcome="delivered"\\} 2`))
  t.match(text, new RegExp(`storehook_outbox_pending\\{target="${downHost}"\\} 2`))
  t.match(text, new RegExp(`storehook_outbox_oldest_pending_seconds\\{target="${downHost}"\\} [0-9.]+`))
  t.notMatch(text, new RegExp(`storehook_outbox_pending\\{target="${up.url.split('/')[2]}"\\}`), 'a drained target has nothing pending')
  t.match(text, /storehook_delivery_duration_seconds_bucket/)
  t.match(text, /storehook_last_received_timestamp_seconds\{environment="Production"\} \d+/)
  t.match(text, /storehook_quarantine_items 0/)
  t.match(text, /storehook_database_bytes \d+/)
  t.notMatch(text, /storehook_outbox_dead\{[^}]*\} [1-9]/, 'nothing is dead yet')
  t.notMatch(text, /token|secret/i)
})
