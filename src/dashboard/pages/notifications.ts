// /admin/notifications: the search, one notification in full, and its replay.
import type { FastifyInstance } from 'fastify'
import { DELIVERY_STATUSES, VERIFICATION_STATUSES } from '../../db/vocabulary.ts'
import { AppError } from '../../errors.ts'
import { FILTER_FIELDS, filledIn, filterFrom, notificationOrNotFound, type FilterForm } from '../../ops/notifications.ts'
import { replayOne } from '../../ops/replay.ts'
import { parseWhen } from '../../ops/when.ts'
import { checkTarget, flashFrom, formSchema, page, PAGE_SIZE, type Dashboard, type Form } from '../page.ts'
import { listPage, notificationPage } from '../views.ts'

const filterQuerySchema = {
  type: 'object',
  properties: {
    ...Object.fromEntries(FILTER_FIELDS.map((k) => [k, { type: 'string', maxLength: 200 }])),
    verification: { type: 'string', enum: ['', ...VERIFICATION_STATUSES] },
    deliveryStatus: { type: 'string', enum: ['', ...DELIVERY_STATUSES] },
    cursor: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 500 }
  }
} as const

// The link to the next page: the same search (as typed, without its empty
// fields), the same page size when it is not the default, the next cursor.
export function nextPageHref (form: Form, limit: number, nextCursor: string | null): string | null {
  if (nextCursor === null) return null
  const kept = Object.entries(form).filter(([, v]) => v !== '') as Array<[string, string]>
  if (limit !== PAGE_SIZE) kept.push(['limit', String(limit)])
  return `/admin/notifications?${new URLSearchParams([...kept, ['cursor', nextCursor]]).toString()}`
}

export function notificationPages (app: FastifyInstance, { config, targetNames, store, context }: Dashboard): void {
  const decodedTargets = config.targets.filter((t) => t.payload === 'decoded').map((t) => t.name)
  app.get<{ Querystring: FilterForm & { cursor?: string; limit?: number } }>('/notifications', { schema: { querystring: filterQuerySchema } }, async (request, reply) => {
    const { cursor, limit = PAGE_SIZE, ...form } = request.query
    const now = Date.now()
    const filter = filterFrom(filledIn(form), (key, value) => parseWhen(value, now) ?? (() => {
      throw new AppError('BAD_REQUEST', `${key}: "${value}" is neither an ISO date nor a duration such as 48h.`)
    })())
    const found = await store.listNotifications(filter, limit, cursor ?? null)
    return page(reply, listPage(await context(request), { form, items: found.items, nextHref: nextPageHref(form, limit, found.nextCursor), targets: targetNames }))
  })

  app.get<{ Params: { id: string }; Querystring: Form }>('/notifications/:id', async (request, reply) => {
    const found = await notificationOrNotFound(store, request.params.id, { decoded: decodedTargets.length > 0 })
    return page(reply, notificationPage(await context(request), {
      ...found, targets: targetNames, decodedTargets, flash: flashFrom(request.query)
    }))
  })

  app.post<{ Params: { id: string }; Body: Form }>('/notifications/:id/replay', {
    schema: { body: formSchema({ target: { type: 'string', maxLength: 100 } }) }
  }, async (request, reply) => {
    const { id } = request.params
    const target = request.body.target
    checkTarget(targetNames, target)
    const replayed = await replayOne(store, id, target !== undefined ? [target] : undefined)
    request.log.info({ component: 'dashboard', notificationId: id, targets: replayed }, 'Replay requested.')
    return reply.redirect(`/admin/notifications/${encodeURIComponent(id)}?done=replayed&n=${replayed.length}`, 303)
  })
}
