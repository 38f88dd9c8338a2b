import t from 'tap'
import { nextPageHref } from '../../src/dashboard/pages/notifications.ts'
import { flashFrom, PAGE_SIZE } from '../../src/dashboard/page.ts'

t.test('nextPageHref: the same search, without empty fields, the size only when not the default', async (t) => {
  t.equal(nextPageHref({ type: 'X' }, PAGE_SIZE, null), null)
  t.equal(nextPageHref({ type: 'DID RENEW', subtype: '' }, PAGE_SIZE, 'c1'), '/admin/notifications?type=DID+RENEW&cursor=c1')
  t.equal(nextPageHref({}, 10, 'c&2'), '/admin/notifications?limit=10&cursor=c%262')
})

t.test('flashFrom: only the known messages, whatever the URL says', async (t) => {
  t.equal(flashFrom({}), null)
  t.equal(flashFrom({ done: 'replayed', n: '1' }), 'Replay queued to 1 target; attempts appear below as they happen.')
  t.equal(flashFrom({ done: 'bulk', n: '3' }), 'Replay queued for 3 notifications.')
  for (const n of ['x', '-5', '1e9', '9999999', ' 3']) t.equal(flashFrom({ done: 'bulk', n }), null, `n=${JSON.stringify(n)}: no count the redirect wrote`)
  t.equal(flashFrom({ done: 'released' }), 'Released from the quarantine into the outbox.', 'a message without a count')
  t.equal(flashFrom({ done: '__proto__' }), null)
  t.equal(flashFrom({ done: 'toString' }), null)
})
