// /admin/alerts: open alert episodes, the alert history, and a test alert
// queued to every destination (issue 17).
import type { FastifyInstance } from 'fastify'
import { flashFrom, formSchema, page, type Dashboard, type Form } from '../page.ts'
import { alertsPage } from '../views.ts'

const HISTORY = 100

export function alertPages (app: FastifyInstance, { config, store, context }: Dashboard): void {
  app.get('/alerts', async (request, reply) => {
    const episodes = await store.alertEpisodes()
    return page(reply, alertsPage(await context(request), {
      open: episodes.filter((e) => e.closedAt === null),
      history: await store.alertHistory(HISTORY),
      destinations: config.alerts.destinations,
      flash: flashFrom(request.query as Form)
    }))
  })

  app.post('/alerts/test', { schema: { body: formSchema({}) } }, async (request, reply) => {
    const queued = await app.alerts.queueTest()
    request.log.info({ component: 'dashboard', destinations: queued }, 'Test alert requested.')
    return reply.redirect(`/admin/alerts?done=alerted&n=${queued}`, 303)
  })
}
