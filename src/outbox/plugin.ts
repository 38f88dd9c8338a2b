import fp from 'fastify-plugin'
import { Outbox } from './outbox.ts'

declare module 'fastify' {
  interface FastifyInstance {
    outbox: Outbox
  }
}

export default fp(async (app) => {
  const outbox = new Outbox(app.database)
  const reclaimed = await outbox.reclaimLeases()
  if (reclaimed > 0) app.log.child({ component: 'outbox' }).warn({ reclaimed }, 'Reclaimed leases left by a process that stopped mid-delivery.')
  app.decorate('outbox', outbox)
  // Commits what is queued; the database plugin closes the file after this.
  app.addHook('onClose', async () => { outbox.close() })
}, { name: 'storehook-outbox', dependencies: ['storehook-database'], fastify: '5.x' })
