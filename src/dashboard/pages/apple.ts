// /admin/apple: the catch-up's state, and a test notification followed end to
// end (started here, followed in test-runs.ts).
import type { FastifyInstance } from 'fastify'
import { API_ENVIRONMENTS, type ApiEnvironment } from '../../db/vocabulary.ts'
import { API_NOT_CONFIGURED, catchUpState, runTestNotification, testNotificationClient } from '../../appstore/operator.ts'
import { formSchema, page, type Dashboard, type Form } from '../page.ts'
import { createTestRuns } from '../test-runs.ts'
import { applePage } from '../views.ts'

export function applePages (app: FastifyInstance, { config, store, context }: Dashboard): void {
  const runs = createTestRuns()
  app.addHook('onClose', async () => { await runs.close() })

  app.get<{ Querystring: { test?: string } }>('/apple', {
    schema: { querystring: { type: 'object', properties: { test: { type: 'string', maxLength: 64 } } } }
  }, async (request, reply) => {
    const id = request.query.test
    return page(reply, applePage(await context(request), {
      catchUp: await catchUpState(config, store, app.catchUp?.running ?? false),
      apps: config.appleApi?.apps.map((a) => a.bundleId) ?? [],
      test: id === undefined ? null : runs.get(id) ?? 'gone',
      notConfigured: API_NOT_CONFIGURED
    }))
  })

  app.post<{ Body: Form }>('/apple/test-notification', {
    schema: { body: formSchema({ environment: { type: 'string', enum: API_ENVIRONMENTS }, bundleId: { type: 'string', maxLength: 200 } }, ['environment']) }
  }, async (request, reply) => {
    const environment = request.body.environment as ApiEnvironment
    const client = testNotificationClient(config, environment, request.body.bundleId, runs.signal)
    const same = runs.following(environment, client.bundleId)
    if (same !== undefined) return reply.redirect(`/admin/apple?test=${same}`, 303)
    const id = runs.start({ environment, bundleId: client.bundleId, at: Date.now() }, async () => await runTestNotification(client, store, runs.signal),
      request.log, { component: 'dashboard', environment, bundleId: client.bundleId })
    return reply.redirect(`/admin/apple?test=${id}`, 303)
  })
}
