// GET /admin: the overview (what arrived, each target's health, the latest notifications, the catch-up).
import type { FastifyInstance } from 'fastify'
import { catchUpState } from '../../appstore/operator.ts'
import { targetsWithHealth } from '../../ops/targets.ts'
import { page, type Dashboard } from '../page.ts'
import { overviewPage } from '../views.ts'

export function overviewPages (app: FastifyInstance, { config, store, context }: Dashboard): void {
  app.get('/', async (request, reply) => {
    const now = Date.now()
    return page(reply, overviewPage(await context(request), {
      overview: await store.overview(now),
      hourly: await store.hourlyCounts(now),
      targets: await targetsWithHealth(store, config.targets, now),
      latest: (await store.listNotifications({}, 10, null)).items,
      catchUp: await catchUpState(config, store, app.catchUp?.running ?? false)
    }))
  })
}
