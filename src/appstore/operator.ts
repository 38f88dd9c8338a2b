// What an operator asks of the App Store Server API integration, shared by
// the admin JSON API and the dashboard: the state of the automatic catch-up,
// and a test notification followed end to end.
import type { Config } from '../config.ts'
import type { UnorderedReads } from '../outbox/engine.ts'
import type { HistoryRunKind } from '../db/vocabulary.ts'
import { AppError } from '../errors.ts'
import { AppleApiError, clientsFor, type ApiEnvironment, type AppStoreClient } from './client.ts'
import { checkTestNotification, type TestReport } from './test-notification.ts'

export const API_NOT_CONFIGURED = 'The App Store Server API is not configured: set APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PATH and APPLE_BUNDLE_ID.'

export interface CatchUpRun {
  bundleId: string
  environment: ApiEnvironment
  kind: HistoryRunKind
  started: number
  finished: number | null
  window: { startDate: number; endDate: number }
  onlyFailures: boolean
  pages: number
  seen: number
  new: number
  already: number
  refused: number
  lastError: string | null
}

export interface CatchUpState {
  enabled: boolean
  intervalMs: number | null
  marginMs: number | null
  running: boolean
  // The last run per app and environment.
  runs: CatchUpRun[]
}

export async function catchUpState (config: Config, storage: Pick<UnorderedReads, 'lastCatchUps'>, running: boolean): Promise<CatchUpState> {
  const api = config.appleApi
  const runs = await storage.lastCatchUps()
  return {
    enabled: api !== null,
    intervalMs: api?.catchUpIntervalMs ?? null,
    marginMs: api?.catchUpMarginMs ?? null,
    running,
    runs: runs.map((r) => ({
      bundleId: r.bundleId,
      environment: r.environment,
      kind: r.kind,
      started: r.startedAt,
      finished: r.finishedAt,
      window: { startDate: r.startDate, endDate: r.endDate },
      onlyFailures: r.onlyFailures,
      pages: r.pages,
      seen: r.seen,
      new: r.added,
      already: r.already,
      refused: r.refused,
      lastError: r.lastError
    }))
  }
}

// Apple refused the request itself (401 before an app is approved, 429...):
// that is the answer the operator needs, not a storehook failure.
export interface ApiRefusal {
  ok: false
  outcome: 'apple-api-error'
  environment: ApiEnvironment
  bundleId: string
  status: number
  message: string
}

// Throws (not configured, unknown bundle ID) before anything is asked of
// Apple, so a caller that runs the check in the background can still refuse
// the request itself.
export function testNotificationClient (config: Config, environment: ApiEnvironment, bundleId?: string, signal?: AbortSignal): AppStoreClient {
  const api = config.appleApi
  if (api === null) throw new AppError('NOT_FOUND', API_NOT_CONFIGURED)
  const bundle = bundleId ?? api.apps[0]!.bundleId
  const client = clientsFor(api, [environment], signal !== undefined ? { signal } : {}).find((c) => c.bundleId === bundle)
  if (client === undefined) throw new AppError('BAD_REQUEST', `No App Store Server API key for bundle ID ${bundle}.`)
  return client
}

export async function runTestNotification (client: AppStoreClient, storage: Pick<UnorderedReads, 'findTestNotification'>, signal?: AbortSignal): Promise<TestReport | ApiRefusal> {
  try {
    return await checkTestNotification({ client, storage, ...(signal !== undefined ? { signal } : {}) })
  } catch (err) {
    if (!(err instanceof AppleApiError)) throw err
    return { ok: false, outcome: 'apple-api-error', environment: client.environment, bundleId: client.bundleId, status: err.status, message: err.message }
  }
}
