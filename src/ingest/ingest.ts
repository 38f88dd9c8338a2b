// Where a notification enters: decode, judge, route, and store it in the
// outbox. The HTTP route, backfill and quarantine release all come through here.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger as Logger } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { decodeNotificationBody } from '../apple/payload.ts'
import type { TargetConfig } from '../config.ts'
import { targetsFor } from '../delivery/routing.ts'
import { AppError } from '../errors.ts'
import type { Outbox } from '../outbox/outbox.ts'
import { judge, type PolicyOptions } from './policy.ts'

export type Source = 'webhook' | 'backfill' | 'quarantine'

export interface Accepted {
  id: string
  duplicate: boolean
  targets: string[]
}

export interface IngestOptions {
  outbox: Outbox
  targets: readonly TargetConfig[]
  policy: PolicyOptions
  log: Logger
}

export function createIngest (opts: IngestOptions): { accept: (raw: Buffer, source: Source) => Promise<Accepted> } {
  const { outbox, log } = opts
  return {
    async accept (raw, source) {
      const n = decodeNotificationBody(raw)
      const verdict = judge(n, opts.policy)
      const id = uuidv7()
      const now = Date.now()
      const targets = targetsFor(opts.targets, n)
      let stored
      try {
        stored = await outbox.enqueue({
          id,
          dedupeKey: n.notificationUuid ?? `v1:${createHash('sha256').update(raw).digest('hex')}`,
          receivedAt: now,
          source,
          version: n.version,
          notificationUuid: n.notificationUuid,
          notificationType: n.notificationType,
          subtype: n.subtype,
          environment: n.environment,
          bundleId: n.bundleId,
          appAppleId: n.appAppleId,
          signedDate: n.signedDate,
          originalTransactionId: n.originalTransactionId,
          transactionId: n.transactionId,
          productId: n.productId,
          appAccountToken: n.appAccountToken,
          verification: verdict.verification,
          verificationError: verdict.reason,
          body: raw
        }, targets)
      } catch (err) {
        log.error({ notificationUuid: n.notificationUuid, type: n.notificationType, err }, 'Storing a notification failed.')
        throw new AppError('STORAGE_UNAVAILABLE', undefined, { cause: err })
      }
      log.info({
        notificationId: stored.id,
        notificationUuid: n.notificationUuid,
        version: n.version,
        type: n.notificationType,
        subtype: n.subtype,
        environment: n.environment,
        bundleId: n.bundleId,
        verification: verdict.verification,
        duplicate: stored.duplicate,
        targets: stored.targets,
        source
      }, stored.duplicate ? 'Notification received again; already stored.' : 'Notification received.')
      return stored
    }
  }
}
