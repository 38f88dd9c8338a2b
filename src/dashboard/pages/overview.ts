// GET /admin: the overview (what arrived, each target's health, the latest notifications, the catch-up).
import type { FastifyInstance } from 'fastify'
import { catchUpState } from '../../appstore/operator.ts'
import { notificationList } from '../../ops/notifications.ts'
import { targetsWithHealth } from '../../ops/targets.ts'
import { hourlyCounts, overview } from '../../outbox/queries.ts'
import { page, type Dashboard } from '../page.ts'
import { overviewPage } from '../views.ts'

export function overviewPages (app: FastifyInstance, { config, db, context }: Dashboard): void {
  app.get('/', async (request, reply) => {
    const now = Date.now()
    return page(reply, overviewPage(context(request), {
      overview: overview(db(), now),
      hourly: hourlyCounts(db(), now),
      targets: await targetsWithHealth(db(), config.targets, now),
      latest: (await notificationList(db(), {}, 10, null)).items,
      catchUp: catchUpState(config, db(), app.catchUp?.running ?? false)
    }))
  })
}
