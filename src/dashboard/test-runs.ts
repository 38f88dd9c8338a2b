// The test notifications asked from the dashboard, in memory. A check takes
// up to a minute (Apple's send attempt, then every target), about what a
// reverse proxy waits for an answer before it gives up (nginx and Fly: 60 s).
// So the page's POST starts a run here and redirects at once to a page that
// reloads itself until the verdict is in; reloading it never asks Apple
// again. The last KEPT_TEST_RUNS are kept, oldest dropped first; a restart
// forgets them.
import { randomUUID } from 'node:crypto'
import type { ApiRefusal } from '../appstore/operator.ts'
import type { TestReport } from '../appstore/test-notification.ts'

// Test notifications asked from the dashboard that are kept for their page.
export const KEPT_TEST_RUNS = 20

// The check itself broke (not Apple's answer): a bug, or a shutdown.
export interface CheckFailed { ok: false; outcome: 'storehook-error'; message: string }

// A test notification asked from the dashboard; `report` stays null while
// storehook is still following it.
export interface TestRun {
  environment: string
  bundleId: string
  at: number
  report: TestReport | ApiRefusal | CheckFailed | null
}

interface RunLog {
  info: (fields: object, message: string) => void
  error: (fields: object, message: string) => void
}

export interface TestRuns {
  // Given to each check: aborted when the server closes.
  readonly signal: AbortSignal
  get: (id: string) => TestRun | undefined
  // The id of a run still following this app and environment: a second
  // click while the first is running follows that one.
  following: (environment: string, bundleId: string) => string | undefined
  // Keeps a new run and starts its check; returns its id.
  start: (run: Omit<TestRun, 'report'>, check: () => Promise<TestReport | ApiRefusal>, log: RunLog, fields: object) => string
  // Every check started has settled.
  idle: () => Promise<void>
  // Stops the checks still running (their runs say so) and waits for them.
  close: () => Promise<void>
}

export function createTestRuns (kept: number = KEPT_TEST_RUNS): TestRuns {
  const runs = new Map<string, TestRun>()
  const stopChecks = new AbortController()
  const checking = new Set<Promise<void>>()
  const idle = async (): Promise<void> => { await Promise.allSettled(checking) }

  return {
    signal: stopChecks.signal,
    get: (id) => runs.get(id),
    following (environment, bundleId) {
      return [...runs].find(([, r]) => r.report === null && r.environment === environment && r.bundleId === bundleId)?.[0]
    },
    start (started, check, log, fields) {
      const id = randomUUID()
      const run: TestRun = { ...started, report: null }
      runs.set(id, run)
      // A Map iterates in insertion order: the first keys are the oldest.
      for (const old of runs.keys()) {
        if (runs.size <= kept) break
        runs.delete(old)
      }
      log.info(fields, 'Test notification requested.')
      const checked: Promise<void> = check().then((report) => {
        run.report = report
        log.info({ ...fields, outcome: report.outcome }, 'Test notification checked.')
      }, (err: unknown) => {
        const stopped = stopChecks.signal.aborted
        run.report = { ok: false, outcome: 'storehook-error', message: stopped ? 'storehook stopped before the check finished.' : `storehook could not finish the check: ${(err as Error).message}` }
        if (stopped) log.info(fields, 'Test notification check stopped by the shutdown.')
        else log.error({ ...fields, err }, 'Test notification check failed.')
      }).finally(() => { checking.delete(checked) })
      checking.add(checked)
      return id
    },
    idle,
    async close () {
      stopChecks.abort()
      await idle()
    }
  }
}
