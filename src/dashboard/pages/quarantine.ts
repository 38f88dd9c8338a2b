// /admin/quarantine: the refused payloads, newest first, and their release.
import type { FastifyInstance } from 'fastify'
import { quarantinePage as readQuarantinePage } from '../../ops/quarantine.ts'
import { flashFrom, formSchema, page, PAGE_SIZE, type Dashboard, type Form } from '../page.ts'
import { quarantinePage } from '../views.ts'

export function quarantinePages (app: FastifyInstance, { store, context }: Dashboard): void {
  app.get<{ Querystring: { cursor?: number } & Form }>('/quarantine', {
    schema: { querystring: { type: 'object', properties: { cursor: { type: 'integer', minimum: 1 } } } }
  }, async (request, reply) => {
    const { items, size, nextCursor } = await readQuarantinePage(store, PAGE_SIZE, request.query.cursor ?? null)
    return page(reply, quarantinePage(await context(request), {
      items,
      size,
      nextHref: nextCursor !== null ? `/admin/quarantine?cursor=${nextCursor}` : null,
      flash: flashFrom(request.query as Form)
    }))
  })

  app.post<{ Params: { id: number }; Body: Form }>('/quarantine/:id/release', {
    schema: {
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
      body: formSchema({ force: { type: 'string', enum: ['1'] } })
    }
  }, async (request, reply) => {
    const force = request.body.force === '1'
    const accepted = await app.ingest.release(request.params.id, { force })
    request.log.info({ component: 'dashboard', quarantineId: request.params.id, notificationId: accepted.id, force }, 'Quarantine release requested.')
    return reply.redirect(`/admin/notifications/${encodeURIComponent(accepted.id)}?done=released`, 303)
  })
}
