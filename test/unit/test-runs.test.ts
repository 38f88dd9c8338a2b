import t from 'tap'
import { createTestRuns } from '../../src/dashboard/test-runs.ts'
import type { TestReport } from '../../src/appstore/test-notification.ts'

function recorder (): { lines: string[]; log: { info: (f: object, m: string) => void; error: (f: object, m: string) => void } } {
  const lines: string[] = []
  return { lines, log: { info: (_f, m) => { lines.push(`info ${m}`) }, error: (_f, m) => { lines.push(`error ${m}`) } } }
}

const report = { ok: true, outcome: 'delivered' } as unknown as TestReport
const run = (environment: string, bundleId = 'com.x') => ({ environment, bundleId, at: 1 })

t.test('a run is followed until its check settles, then shows the report', async (t) => {
  const runs = createTestRuns()
  const { lines, log } = recorder()
  let finish!: (r: TestReport) => void
  const id = runs.start(run('Sandbox'), async () => await new Promise<TestReport>((resolve) => { finish = resolve }), log, {})
  t.equal(runs.get(id)!.report, null)
  t.equal(runs.following('Sandbox', 'com.x'), id, 'a second click follows the running one')
  t.equal(runs.following('Production', 'com.x'), undefined)
  t.equal(runs.following('Sandbox', 'com.y'), undefined)
  finish(report)
  await runs.idle()
  t.same(runs.get(id)!.report, report)
  t.equal(runs.following('Sandbox', 'com.x'), undefined, 'a finished run is not followed')
  t.same(lines, ['info Test notification requested.', 'info Test notification checked.'])
})

t.test('a check that breaks, or is stopped by the shutdown, says so', async (t) => {
  const runs = createTestRuns()
  const { lines, log } = recorder()
  const broken = runs.start(run('Sandbox'), async () => { throw new Error('boom') }, log, {})
  await runs.idle()
  t.same(runs.get(broken)!.report, { ok: false, outcome: 'storehook-error', message: 'storehook could not finish the check: boom' })
  const stopped = runs.start(run('Production'), async () => await new Promise<TestReport>((_resolve, reject) => {
    runs.signal.addEventListener('abort', () => { reject(new Error('aborted')) })
  }), log, {})
  await runs.close()
  t.same(runs.get(stopped)!.report, { ok: false, outcome: 'storehook-error', message: 'storehook stopped before the check finished.' })
  t.same(lines, ['info Test notification requested.', 'error Test notification check failed.',
    'info Test notification requested.', 'info Test notification check stopped by the shutdown.'])
})

t.test('only the last runs are kept, oldest dropped first', async (t) => {
  const runs = createTestRuns(2)
  const { log } = recorder()
  const ids = ['a', 'b', 'c'].map((env) => runs.start(run(env), async () => report, log, {}))
  await runs.idle()
  t.equal(runs.get(ids[0]!), undefined)
  t.ok(runs.get(ids[1]!))
  t.ok(runs.get(ids[2]!))
})
