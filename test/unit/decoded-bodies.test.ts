// The decoded documents the workers send: built once per notification and
// shared, the cache bounded, and a document rebuilt after it left the cache
// the same bytes.
import t from 'tap'
import { DecodedBodies } from '../../src/delivery/decoded-bodies.ts'
import type { NotificationFacts } from '../../src/outbox/engine.ts'
import { v2Body } from '../helpers/notifications.ts'

const facts: NotificationFacts = { source: 'catch-up', receivedAt: 1_700_000_000_000, verification: 'verified', verificationError: null }

t.test('one document per notification, shared by every decoded target', async (t) => {
  const bodies = new DecodedBodies()
  const c = { notificationId: 'n-1', body: v2Body(), facts }
  const first = bodies.get(c)
  t.equal(bodies.get(c), first, 'the second target gets the same buffer')
  t.equal(bodies.built, 1, 'decoded once')
  t.match(JSON.parse(first.toString('utf8')), { id: 'n-1', source: 'catch-up' })
})

t.test('the cache keeps at most 256 documents; one rebuilt after it left is the same bytes', async (t) => {
  const bodies = new DecodedBodies()
  const one = { notificationId: 'n-0', body: v2Body(), facts }
  const first = Buffer.from(bodies.get(one))
  for (let i = 1; i <= 256; i++) bodies.get({ notificationId: `n-${i}`, body: v2Body(), facts })
  t.equal(bodies.built, 257)
  const again = bodies.get(one)
  t.equal(bodies.built, 258, 'the oldest was dropped, so it is built again')
  t.ok(again.equals(first), 'and it is the same bytes')
})

t.test('a large body does not hold more than 16 MB of documents', async (t) => {
  const bodies = new DecodedBodies()
  const big = { notificationId: 'big-0', body: v2Body({ padTo: 3_000_000 }), facts }
  bodies.get(big)
  for (let i = 1; i <= 6; i++) bodies.get({ ...big, notificationId: `big-${i}` })
  bodies.get(big)
  t.equal(bodies.built, 8, 'the first left the cache well before 256 documents')
})
