import t from 'tap'
import { filledIn, filterFrom } from '../../src/ops/notifications.ts'
import { unknownTargets } from '../../src/ops/targets.ts'

t.test('filterFrom: given fields only, times through the door\'s own parser', async (t) => {
  const asked: string[] = []
  const when = (field: string, value: string): number => { asked.push(`${field}=${value}`); return value.length }
  t.same(filterFrom({}, when), {})
  t.same(filterFrom({ type: 'DID_RENEW', bundleId: 'com.x', since: '48h', until: '2026-01-01' }, when),
    { type: 'DID_RENEW', bundleId: 'com.x', since: 3, until: 10 })
  t.same(asked, ['since=48h', 'until=2026-01-01'])
  t.throws(() => filterFrom({ since: 'soon' }, () => { throw new Error('since: bad') }), /since: bad/)
})

t.test('filledIn: trims what people typed and drops empty fields', async (t) => {
  t.same(filledIn({ type: '  DID_RENEW ', subtype: '', environment: '   ', target: 'a' }), { type: 'DID_RENEW', target: 'a' })
  // Keys that are not filters never become filters.
  t.same(filledIn({ cursor: 'x' } as never), {})
})

t.test('unknownTargets: the names asked for that are not configured', async (t) => {
  t.same(unknownTargets(['a', 'b'], undefined), [])
  t.same(unknownTargets(['a', 'b'], ['a']), [])
  t.same(unknownTargets(['a', 'b'], ['c', 'a', 'toString']), ['c', 'toString'])
  t.same(unknownTargets([], ['a']), ['a'])
})
