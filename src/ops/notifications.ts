// The operator's reads of notifications, shared by the admin API, the
// dashboard and the CLI: the list and its filters, and one notification in
// full. Async and given the storage they read, so that the storage engine
// behind them can change without touching a route.
import { AppError } from '../errors.ts'
import type { NotificationFilter, UnorderedReads } from '../outbox/engine.ts'
import { notificationDetail, type NotificationDetail } from './notification-detail.ts'

// The filters every door offers (the API's query and replay filter, the
// dashboard's search form, the CLI's flags), in the order forms show them.
export const FILTER_FIELDS = ['type', 'subtype', 'environment', 'bundleId', 'originalTransactionId', 'verification', 'deliveryStatus', 'target', 'since', 'until'] as const
export type FilterField = (typeof FILTER_FIELDS)[number]
export type FilterForm = Partial<Record<FilterField, string>>

// Filter values as text (a form, flags) into a filter: absent fields stay
// out, since/until go through `when`, which each door gives its own refusal.
export function filterFrom (form: FilterForm, when: (field: 'since' | 'until', value: string) => number): NotificationFilter {
  const filter: NotificationFilter = {}
  for (const key of FILTER_FIELDS) {
    const value = form[key]
    if (value === undefined) continue
    if (key === 'since' || key === 'until') filter[key] = when(key, value)
    // Not checked against the vocabulary here: the API's and the dashboard's
    // schemas admit only its values, and an unknown one from the CLI matches nothing.
    else (filter as Record<typeof key, string>)[key] = value
  }
  return filter
}

// A form as people fill it: surrounding spaces are typing, an empty field is no filter.
export function filledIn (form: FilterForm): FilterForm {
  const kept: FilterForm = {}
  for (const key of FILTER_FIELDS) {
    const value = form[key]?.trim()
    if (value !== undefined && value !== '') kept[key] = value
  }
  return kept
}

// The 404 every door answers for an id it does not hold.
export function noSuchNotification (id: string): AppError {
  return new AppError('NOT_FOUND', `No notification ${id}.`)
}

// One notification with its deliveries and attempts.
export async function notificationOrNotFound (store: Pick<UnorderedReads, 'getNotification'>, id: string, opts: { decoded?: boolean } = {}): Promise<NotificationDetail> {
  const found = await notificationDetail(store, id, opts)
  if (found === null) throw noSuchNotification(id)
  return found
}
