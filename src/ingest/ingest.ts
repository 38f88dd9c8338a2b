// Where a notification enters: decode, judge, route, and store it in the
// outbox. The HTTP route, backfill and quarantine release all come through here.
import type { FastifyBaseLogger as Logger } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { decodeNotificationBody, type DecodedNotification } from '../apple/payload.ts'
import { ConfigError, type Config, type TargetConfig } from '../config.ts'
import type { NotificationSource, ReceiveOutcome, VerificationStatus } from '../db/vocabulary.ts'
import { createVerifier, defaultRootCertificates, loadRootCertificates } from '../apple/verify.ts'
import { Dispatcher } from '../delivery/dispatcher.ts'
import { targetsFor } from '../delivery/routing.ts'
import { AppError } from '../errors.ts'
import { dedupeKeyOf, type QuarantineCaps, type Storage } from '../outbox/engine.ts'
import { judge, type PolicyOptions } from './policy.ts'

export type Source = NotificationSource

export interface Accepted {
  id: string
  duplicate: boolean
  targets: string[]
}

export interface IngestOptions {
  outbox: Storage
  // Stores each new notification and hands its deliveries to the workers;
  // by default it only stores (the CLI runs no workers).
  dispatcher?: Dispatcher
  targets: readonly TargetConfig[]
  policy: PolicyOptions
  quarantine: QuarantineCaps
  log: Logger
  // Told of every notification decoded: stored, duplicate, or refused.
  observe?: (n: DecodedNotification, verification: VerificationStatus, outcome: ReceiveOutcome) => void
}

export interface Ingest {
  accept: (raw: Buffer, source: Source) => Promise<Accepted>
  // Puts a quarantined payload through the pipeline again (after the operator
  // fixed the configuration); `force` accepts it as unverified, with the reason.
  release: (quarantineId: number, options?: { force?: boolean }) => Promise<Accepted>
}

export function createIngest (opts: IngestOptions): Ingest {
  const { outbox, log } = opts
  const dispatcher = opts.dispatcher ?? new Dispatcher(outbox)

  async function keep (raw: Buffer, n: DecodedNotification, err: AppError): Promise<void> {
    try {
      const { id, dropped } = await outbox.quarantine({
        receivedAt: Date.now(),
        code: err.code,
        reason: err.message,
        notificationUuid: n.indexed.notificationUuid,
        notificationType: n.indexed.notificationType,
        environment: n.indexed.environment,
        bundleId: n.indexed.bundleId,
        bytes: raw.length,
        body: raw
      }, opts.quarantine)
      log.warn({ quarantineId: id, code: err.code, reason: err.message, notificationUuid: n.indexed.notificationUuid, dropped }, 'Notification refused and quarantined.')
    } catch (qerr) {
      // The refusal stands either way; losing the copy only costs the release option.
      log.error({ err: qerr, code: err.code }, 'Quarantining a refused notification failed.')
    }
  }

  async function accept (raw: Buffer, source: Source, policy: PolicyOptions = opts.policy): Promise<Accepted> {
    const n = decodeNotificationBody(raw)
    let verdict
    try {
      verdict = judge(n, policy)
    } catch (err) {
      // Only well-formed JWS are worth keeping: anything else is not Apple's.
      if (err instanceof AppError && n.jws !== null && source !== 'quarantine' && opts.quarantine.maxItems > 0) await keep(raw, n, err)
      throw err
    }
    const id = uuidv7()
    const now = Date.now()
    const targets = targetsFor(opts.targets, n.indexed)
    let stored
    try {
      stored = await dispatcher.dispatch({
        id,
        dedupeKey: dedupeKeyOf(n.indexed.notificationUuid, raw),
        receivedAt: now,
        source,
        version: n.version,
        ...n.indexed,
        verification: verdict.verification,
        verificationError: verdict.reason,
        body: raw
      }, targets)
    } catch (err) {
      log.error({ notificationUuid: n.indexed.notificationUuid, type: n.indexed.notificationType, err }, 'Storing a notification failed.')
      throw new AppError('STORAGE_UNAVAILABLE', undefined, { cause: err })
    }
    log.info({
      notificationId: stored.id,
      notificationUuid: n.indexed.notificationUuid,
      version: n.version,
      type: n.indexed.notificationType,
      subtype: n.indexed.subtype,
      environment: n.indexed.environment,
      bundleId: n.indexed.bundleId,
      verification: verdict.verification,
      duplicate: stored.duplicate,
      targets: stored.targets,
      source
    }, stored.duplicate ? 'Notification received again; already stored.' : 'Notification received.')
    opts.observe?.(n, verdict.verification, stored.duplicate ? 'duplicate' : 'stored')
    return stored
  }

  return {
    accept: (raw, source) => accept(raw, source),
    async release (quarantineId, options = {}) {
      const found = await outbox.findQuarantined(quarantineId)
      if (found === null) throw new AppError('NOT_FOUND', `No quarantined notification ${quarantineId}.`)
      if (found.body === null) throw new AppError('BODY_UNREADABLE', `The stored body of quarantined notification ${quarantineId} cannot be read back (${found.bodyError}), so it cannot be released.`)
      const policy = options.force === true && opts.policy.mode === 'enforce' ? { ...opts.policy, mode: 'log' as const } : opts.policy
      const accepted = await accept(found.body, 'quarantine', policy)
      await outbox.markReleased(quarantineId, accepted.id)
      log.info({ quarantineId, notificationId: accepted.id, forced: options.force === true }, 'Quarantined notification released.')
      return accepted
    }
  }
}

// The ingest as configured: the server, backfill and quarantine release all
// judge a payload by the same policy. APPLE_ROOT_CERTS replaces the bundled
// Apple root (tests, private CAs).
export function ingestFromConfig (config: Config, opts: Pick<IngestOptions, 'outbox' | 'dispatcher' | 'log' | 'observe'>): Ingest {
  let roots: Buffer[]
  try {
    roots = config.appleRootCerts.length > 0 ? loadRootCertificates(config.appleRootCerts) : defaultRootCertificates()
  } catch (err) {
    throw new ConfigError('APPLE_ROOT_CERTS', (err as Error).message)
  }
  return createIngest({
    ...opts,
    targets: config.targets,
    policy: {
      mode: config.verify,
      bundleIds: config.bundleIds,
      sharedSecret: config.sharedSecret,
      allowUnauthenticatedV1: config.allowUnauthenticatedV1,
      signatures: createVerifier({ roots })
    },
    quarantine: config.quarantine
  })
}
