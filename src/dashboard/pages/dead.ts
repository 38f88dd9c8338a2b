// /admin/dead: each target's dead deliveries, and their replay in bulk.
import type { FastifyInstance } from 'fastify'
import { replayMatching } from '../../ops/replay.ts'
import { checkTarget, flashFrom, formSchema, page, type Dashboard, type Form } from '../page.ts'
import { deadPage } from '../views.ts'

export function deadPages (app: FastifyInstance, { targetNames, store, context }: Dashboard): void {
  app.get('/dead', async (request, reply) => {
    const targets = []
    for (const name of targetNames) {
      targets.push({
        name,
        dead: (await store.targetHealth(name)).dead,
        items: (await store.listNotifications({ deliveryStatus: 'dead', target: name }, 20, null)).items
      })
    }
    return page(reply, deadPage(await context(request), { targets, flash: flashFrom(request.query as Form) }))
  })

  app.post<{ Body: Form }>('/dead/replay', {
    schema: { body: formSchema({ target: { type: 'string', maxLength: 100 } }, ['target']) }
  }, async (request, reply) => {
    const target = request.body.target!
    checkTarget(targetNames, target)
    const result = await replayMatching(store, { deliveryStatus: 'dead', target }, [target])
    request.log.info({ component: 'dashboard', target, ...result }, 'Bulk replay of dead deliveries requested.')
    return reply.redirect(`/admin/dead?done=bulk&n=${result.notifications}`, 303)
  })
}
