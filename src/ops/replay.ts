// Replay, shared by the admin API, the dashboard and the CLI: one
// notification, or every notification a filter matches, delivered again to
// its own targets or to the named ones.
import type { NotificationFilter, Storage } from '../outbox/engine.ts'
import { AppError } from '../errors.ts'
import { noSuchNotification } from './notifications.ts'

// One notification, or the 404 both doors answer. The targets replayed to.
export async function replayOne (outbox: Pick<Storage, 'getNotification' | 'replay'>, id: string, targets?: readonly string[]): Promise<string[]> {
  const found = await outbox.getNotification(id)
  if (found === null) throw noSuchNotification(id)
  if (found.notification.bodyError !== null) throw new AppError('BODY_UNREADABLE', `The stored body of notification ${id} cannot be read back (${found.notification.bodyError}), so it cannot be sent again.`)
  return await outbox.replay(id, targets)
}

// One bulk replay is bounded; a larger backlog is replayed in several calls
// (narrow the time range), so one click cannot queue millions of rows.
export const MAX_BULK_REPLAY = 10_000

export async function replayMatching (outbox: Pick<Storage, 'matchingIds' | 'replay'>, filter: NotificationFilter, targets?: readonly string[]): Promise<{ notifications: number; deliveries: number; truncated: boolean }> {
  const ids = await outbox.matchingIds(filter, MAX_BULK_REPLAY + 1)
  const truncated = ids.length > MAX_BULK_REPLAY
  const chosen = ids.slice(0, MAX_BULK_REPLAY)
  // All at once: the group commit turns them into a few transactions.
  const replayed = await Promise.all(chosen.map((id) => outbox.replay(id, targets)))
  return { notifications: chosen.length, deliveries: replayed.reduce((n, r) => n + r.length, 0), truncated }
}
