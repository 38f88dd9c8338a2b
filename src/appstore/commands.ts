// `storehook backfill` and `storehook request-test-notification`: they work
// on the database file directly (like `replay`), so they run beside the
// server, which forwards whatever they add.
import { pino } from 'pino'
import { loadConfig, type AppleApiConfig, type Config } from '../config.ts'
import { ingestFromConfig } from '../ingest/ingest.ts'
import { fail, withOutbox, type Command, type Values } from '../ops/command-line.ts'
import { parseWhenFlag } from '../ops/when.ts'
import { API_ENVIRONMENTS, clientsFor, type ApiEnvironment } from './client.ts'
import { clampWindow, HISTORY_DAYS, runHistory, type Counts } from './history.ts'
import { checkTestNotification } from './test-notification.ts'

const BACKFILL_HELP = `Usage: storehook backfill --since WHEN [--until WHEN] [--environment Production|Sandbox|both] [--only-failures]

Pages through Apple's notification history (Get Notification History, 20 per
page) and puts every notification storehook does not have into the outbox,
checked exactly as the server checks what Apple posts (VERIFY_SIGNATURES);
refused ones go to the quarantine. The running server forwards what was
added. WHEN is an ISO date or a duration back from now (90m, 48h, 7d).
Apple keeps ${HISTORY_DAYS.Production} days of Production and ${HISTORY_DAYS.Sandbox} days of Sandbox history: an
older --since is clamped, with a warning. --only-failures asks only for what
Apple failed to deliver.

Interrupted, the same command continues from its last page. Progress goes to
stderr, the summary (seen, new, already had, refused) to stdout.
Needs APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PATH, APPLE_BUNDLE_ID.`

const TEST_NOTIFICATION_HELP = `Usage: storehook request-test-notification [--environment Production|Sandbox]

Asks Apple to send a TEST notification (default: Sandbox), follows Apple's
send attempts for up to a minute, and says whether it reached storehook and
every target, or where it stopped and what to check. Run it while the server
runs. Needs the same App Store Server API keys as backfill.`

function apiOrFail (config: Config): AppleApiConfig {
  if (config.appleApi === null) fail('the App Store Server API is not configured: set APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PATH and APPLE_BUNDLE_ID (see README.md)')
  return config.appleApi
}

function environments (value: unknown, def: 'both' | ApiEnvironment): readonly ApiEnvironment[] {
  const v = typeof value === 'string' ? value : def
  if (v === 'both' && def === 'both') return API_ENVIRONMENTS
  const one = API_ENVIRONMENTS.find((e) => e === v)
  if (one !== undefined) return [one]
  return fail(`--environment must be ${def === 'both' ? 'Production, Sandbox or both' : 'Production or Sandbox'}, got "${v}"`)
}

const describe = (c: Counts): string => `${c.seen} seen: ${c.added} new, ${c.already} already had, ${c.refused} refused`

async function backfillCommand (config: Config, values: Values): Promise<void> {
  const api = apiOrFail(config)
  const since = typeof values.since === 'string' ? values.since : fail('backfill needs --since (an ISO date or a duration such as 48h)')
  const until = typeof values.until === 'string' ? values.until : undefined
  const now = Date.now()
  let startDate: number
  let endDate: number
  try {
    startDate = parseWhenFlag('--since', since, now)!
    endDate = parseWhenFlag('--until', until, now) ?? now
  } catch (err) {
    return fail((err as Error).message)
  }
  if (endDate <= startDate) fail('--until must be after --since')
  const onlyFailures = values['only-failures'] === true
  const envs = environments(values.environment, 'both')

  const total: Counts = { pages: 0, seen: 0, added: 0, already: 0, refused: 0 }
  const lines: string[] = []
  let failed = 0
  await withOutbox(config, async (outbox) => {
    const log = pino({ level: 'warn' }, pino.destination(2))
    const ingest = ingestFromConfig(config, { outbox, log })
    for (const client of clientsFor(api, envs)) {
      const label = `${client.environment} ${client.bundleId}`
      // "The same arguments" are the ones typed, so `--since 48h` run again resumes the window first computed.
      const runKey = JSON.stringify(['backfill', client.bundleId, client.environment, since, until ?? null, onlyFailures])
      const resume = await outbox.unfinishedRun(runKey)
      const window = clampWindow(client.environment, { startDate, endDate }, now)
      if (resume !== null) {
        process.stderr.write(`${label}: resuming the interrupted run from page ${resume.pages + 1} (${describe(resume)} so far).\n`)
      } else if (window.clamped) {
        process.stderr.write(`${label}: warning: Apple keeps only ${HISTORY_DAYS[client.environment]} days of ${client.environment} history; starting at ${new Date(window.startDate).toISOString()} instead.\n`)
      }
      try {
        const r = await runHistory({
          client,
          ingest,
          outbox,
          spec: { kind: 'backfill', runKey, onlyFailures, startDate: window.startDate, endDate: window.endDate },
          resume,
          source: 'backfill',
          log,
          onPage: (c) => { process.stderr.write(`${label}: page ${c.pages}, ${describe(c)}\n`) }
        })
        for (const k of Object.keys(total) as Array<keyof Counts>) total[k] += r[k]
        lines.push(`${label}: ${describe(r)}${r.resumed ? ' (resumed run, counts include the earlier part)' : ''}`)
      } catch (err) {
        failed++
        lines.push(`${label}: failed: ${(err as Error).message} Run the same command again to continue.`)
      }
    }
  })
  process.stdout.write(`${lines.join('\n')}\nBackfill ${failed > 0 ? 'incomplete' : 'done'}: ${describe(total)}.\n`)
  if (failed > 0) process.exitCode = 1
}

async function testNotificationCommand (config: Config, values: Values): Promise<void> {
  const api = apiOrFail(config)
  const envs = environments(values.environment, 'Sandbox')
  let bad = 0
  await withOutbox(config, async (outbox) => {
    for (const client of clientsFor(api, envs)) {
      process.stderr.write(`Asking Apple for a ${client.environment} TEST notification for ${client.bundleId}; this can take up to a minute...\n`)
      try {
        const r = await checkTestNotification({ client, storage: outbox })
        if (!r.ok) bad++
        process.stdout.write(`${r.message}\n`)
      } catch (err) {
        bad++
        process.stdout.write(`${client.environment} ${client.bundleId}: ${(err as Error).message}\n`)
      }
    }
  })
  if (bad > 0) process.exitCode = 1
}

export const backfill: Command = {
  help: BACKFILL_HELP,
  options: { since: { type: 'string' }, until: { type: 'string' }, environment: { type: 'string' }, 'only-failures': { type: 'boolean' } },
  run: async (values) => { await backfillCommand(loadConfig(), values) }
}

export const requestTestNotification: Command = {
  help: TEST_NOTIFICATION_HELP,
  options: { environment: { type: 'string' } },
  run: async (values) => { await testNotificationCommand(loadConfig(), values) }
}
