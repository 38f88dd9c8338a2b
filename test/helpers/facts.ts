// Facts a relay test can wait on instead of a fixed time. A notification can
// only reach a target through a delivery row, committed before Apple's 200;
// every send is counted on that row (a claim, or the lease written with it)
// and leaves an attempt row when its outcome is recorded. So once no row is
// pending, every counted attempt is recorded and no request is on the wire,
// the rows say everything the relay sent: a test asserts exact counts there
// and at the target, and a duplicate sent at any time before shows up in
// them, where a fixed sleep only caught one that came within the sleep.
import { sql } from 'drizzle-orm'
import type { TestApp } from './app.ts'

export interface Tally {
  deliveries: number
  delivered: number
  dead: number
  pending: number
  // Attempts counted on the delivery rows (one per send), and attempt rows recorded.
  attempts: number
  recorded: number
}

// What one target's (or, without a name, every target's) delivery rows amount to.
export function tally (s: TestApp, target?: string): Tally {
  const row = s.db.get<Tally>(sql`
    SELECT count(*) AS deliveries,
           coalesce(sum(d.status = 'delivered'), 0) AS delivered,
           coalesce(sum(d.status = 'dead'), 0) AS dead,
           coalesce(sum(d.status = 'pending'), 0) AS pending,
           coalesce(sum(d.attempts), 0) AS attempts,
           coalesce(sum((SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id)), 0) AS recorded
      FROM deliveries d WHERE ${target === undefined ? sql`1` : sql`d.target = ${target}`}`)
  return row!
}

// A FORWARD_TARGETS entry's name: its host, as stored in the delivery rows.
export const hostOf = (url: string): string => new URL(url).host

// Rows the relay still has work or bookkeeping on: pending (due, leased or
// waiting for a retry), or with a send counted whose outcome is not recorded
// yet. A process killed mid-attempt leaves such a count for good: this is for
// in-process apps, not for crash tests.
function open (s: TestApp): Array<{ id: number; target: string; status: string; attempts: number; recorded: number }> {
  return s.db.all(sql`
    SELECT id, target, status, attempts, recorded FROM (
      SELECT d.id, d.target, d.status, d.attempts, (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id) AS recorded FROM deliveries d)
     WHERE status = 'pending' OR attempts > recorded`)
}

// Waits until every delivery row is delivered or dead and every send counted
// on a row has its attempt recorded. A request on the wire is such a send (its
// row counted it when it was claimed or leased), so none is left either.
export async function settled (s: TestApp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = open(s)
    if (left.length === 0) return
    if (Date.now() > deadline) throw new Error(`not settled after ${timeoutMs} ms: open rows ${JSON.stringify(left.slice(0, 10))}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
