// The `storehook` command: serve and the operator's tools, all on the same
// configuration and database file.
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { migrate, openDatabase } from './db/client.ts'
import { ingestFromConfig } from './ingest/ingest.ts'
import { Outbox } from './outbox/outbox.ts'
import { pruneAll } from './outbox/retention.ts'
import { listQuarantine } from './outbox/store.ts'
import { overview, targetHealth, type NotificationFilter } from './outbox/queries.ts'
import { MAX_BULK_REPLAY, replayMatching } from './ops/replay.ts'
import { isoTime, parseWhenFlag } from './ops/when.ts'
import { startServer } from './server.ts'
import { VERSION } from './version.ts'
import { BACKFILL_HELP, backfillCommand, TEST_NOTIFICATION_HELP, testNotificationCommand, type Values } from './appstore/commands.ts'

const HELP = `storehook ${VERSION}: one durable URL for Apple's App Store Server Notifications.

Usage: storehook <command> [options]

Commands:
  serve      receive notifications and forward them to every target (default)
  migrate    apply pending database migrations and exit
  status     the overview: last notification per environment, each target's health
  replay     deliver matching notifications again (filters as the admin API)
  prune      delete delivered notifications older than RETENTION_DAYS now
  quarantine list refused payloads, or release them into the outbox
  backfill   fetch missed notifications from Apple's notification history
  request-test-notification  ask Apple for a TEST notification and follow it to every target

Options:
  --help     show help for a command
  --version  print the version

Configuration comes from environment variables (see README.md).`

const FILTER_HELP = `Filters (all optional, combined with AND):
  --type TYPE  --subtype SUBTYPE  --environment Production|Sandbox
  --bundle-id ID  --original-transaction-id ID  --verification verified|unverified|unchecked
  --delivery-status pending|delivered|dead  --target NAME
  --since WHEN  --until WHEN     (an ISO date, or a duration back from now: 90m, 48h, 7d)`

const COMMAND_HELP: Record<string, string> = {
  status: `Usage: storehook status

Prints the last notification received per environment (as App Store Connect
users check), the counts of the last 24 hours, and each target's health:
pending, dead, delivered, oldest pending, last success, last error. Reads the
database file directly; safe while the server runs.`,
  prune: `Usage: storehook prune

Deletes notifications received more than RETENTION_DAYS (default 30) ago whose
every delivery is delivered; pending and dead ones are never deleted. The
server does the same every ten minutes; this runs it now. Safe while the
server runs.`,
  replay: `Usage: storehook replay [filters] [--to TARGET,...] [--id ID]...

Delivers matching notifications again, to the targets each already has, or to
the targets named by --to (for example a newly added target). The running
server forwards them. At most ${MAX_BULK_REPLAY} per run.

${FILTER_HELP}`,
  quarantine: `Usage: storehook quarantine [list] [--limit N]
       storehook quarantine release <id>... [--force]

Refused V2 payloads that were well-formed JWS are kept in a bounded quarantine
(QUARANTINE_MAX_ITEMS, QUARANTINE_MAX_BYTES). After fixing the configuration
(APPLE_BUNDLE_IDS, APPLE_ROOT_CERTS...), release puts a payload through the
same checks as the server and into the outbox; the running server forwards it.
--force accepts it even if it still does not verify, marked unverified.`,
  serve: `Usage: storehook serve

Listens on HOST:PORT (default 0.0.0.0:8080), stores every notification in
DATABASE_PATH (default ./data/storehook.db) and forwards it to FORWARD_TARGETS
and the targets of STOREHOOK_CONFIG. Stops gracefully on SIGTERM or SIGINT.`,
  backfill: BACKFILL_HELP,
  'request-test-notification': TEST_NOTIFICATION_HELP,
  migrate: `Usage: storehook migrate

Creates DATABASE_PATH if needed and applies the migrations it lacks. Safe to
run while the server runs, and safe to run twice.`
}

function whenFlag (flag: string, value: string | undefined, now: number): number | undefined {
  try {
    return parseWhenFlag(flag, value, now)
  } catch (err) {
    fail((err as Error).message)
  }
}

function filterFrom (values: Values): NotificationFilter {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] as string : undefined)
  const now = Date.now()
  const f: NotificationFilter = {
    type: str('type'),
    subtype: str('subtype'),
    environment: str('environment'),
    bundleId: str('bundle-id'),
    originalTransactionId: str('original-transaction-id'),
    verification: str('verification'),
    deliveryStatus: str('delivery-status'),
    target: str('target'),
    since: whenFlag('--since', str('since'), now),
    until: whenFlag('--until', str('until'), now)
  }
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as NotificationFilter
}

const ago = (at: number | null, now: number): string => {
  const iso = isoTime(at)
  return iso === null || at === null ? '-' : `${iso} (${Math.round((now - at) / 60_000)} min ago)`
}

function statusCommand (config: Config): void {
  const database = openDatabase(config.databasePath, { busyTimeoutMs: 30_000 })
  try {
    migrate(database)
    const now = Date.now()
    const o = overview(database.db, now)
    const out: string[] = [`storehook ${VERSION}, ${config.databasePath}`, '', 'Last notification received:']
    if (o.lastReceived.length === 0) out.push('  none yet')
    for (const r of o.lastReceived) out.push(`  ${(r.environment ?? 'unknown').padEnd(12)} ${ago(r.at, now)}  ${r.type}`)
    out.push('', 'Last 24 hours:')
    if (o.last24h.length === 0) out.push('  none')
    for (const r of o.last24h) out.push(`  ${(r.environment ?? 'unknown').padEnd(12)} ${r.verification.padEnd(11)} ${r.n}`)
    out.push('', 'Targets:')
    if (config.targets.length === 0) out.push('  none configured')
    for (const t of config.targets) {
      const h = targetHealth(database.db, t.name)
      out.push(`  ${t.name}: ${h.pending} pending, ${h.dead} dead, ${h.delivered} delivered; oldest pending ${ago(h.oldestPendingAt, now)}`)
      out.push(`    last success ${ago(h.lastSuccessAt, now)}; last error ${h.lastError === null ? '-' : `${h.lastError} at ${ago(h.lastErrorAt, now)}`}`)
    }
    process.stdout.write(out.join('\n') + '\n')
  } finally {
    database.close()
  }
}

async function replayCommand (config: Config, values: Values): Promise<void> {
  const filter = filterFrom(values)
  const to = typeof values.to === 'string' ? values.to.split(',').map((x) => x.trim()).filter(Boolean) : undefined
  const names = new Set(config.targets.map((t) => t.name))
  const unknown = (to ?? []).filter((x) => !names.has(x))
  if (unknown.length > 0) fail(`--to: unknown target(s) ${unknown.join(', ')}; configured: ${[...names].join(', ') || 'none'}`)
  const ids = (Array.isArray(values.id) ? values.id : values.id === undefined ? [] : [values.id]).map(String)
  if (ids.length === 0 && Object.keys(filter).length === 0) fail('replay needs --id or at least one filter (see storehook replay --help)')
  const database = openDatabase(config.databasePath, { busyTimeoutMs: 30_000 })
  migrate(database)
  const outbox = new Outbox({ path: config.databasePath, busyTimeoutMs: 30_000 })
  try {
    if (ids.length > 0) {
      let deliveries = 0
      for (const id of ids) {
        const replayed = await outbox.replay(id, to)
        if (replayed.length === 0) process.stdout.write(`${id}: no such notification, or no target to replay to\n`)
        deliveries += replayed.length
      }
      process.stdout.write(`Replayed ${ids.length} notification(s): ${deliveries} deliveries queued.\n`)
    } else {
      const r = await replayMatching(database.db, outbox, filter, to)
      process.stdout.write(`Replayed ${r.notifications} notification(s): ${r.deliveries} deliveries queued.${r.truncated ? ` Stopped at ${MAX_BULK_REPLAY}: narrow the filter and run again.` : ''}\n`)
    }
  } finally {
    await outbox.close()
    database.close()
  }
}

async function quarantineCommand (config: Config, args: string[], flags: { force: boolean; limit: number }): Promise<void> {
  const database = openDatabase(config.databasePath, { busyTimeoutMs: 30_000 })
  migrate(database)
  try {
    const [sub = 'list', ...ids] = args
    if (sub === 'list') {
      const rows = listQuarantine(database.db, flags.limit, null)
      if (rows.length === 0) process.stdout.write('The quarantine is empty.\n')
      for (const r of rows) {
        process.stdout.write(`${r.id}\t${isoTime(r.receivedAt) ?? '-'}\t${r.code}\t${r.notificationType ?? '-'}\t${r.environment ?? '-'}\t${r.bundleId ?? '-'}\t${r.releasedAs !== null ? 'released as ' + r.releasedAs : r.reason}\n`)
      }
      return
    }
    if (sub !== 'release' || ids.length === 0) fail('usage: storehook quarantine [list] | release <id>... [--force]')
    const outbox = new Outbox({ path: config.databasePath, busyTimeoutMs: 30_000 })
    // Warnings go to stderr: stdout is the command's answer.
    const log = pino({ level: 'warn' }, pino.destination(2))
    const ingest = ingestFromConfig(config, { outbox, log })
    let failed = 0
    try {
      for (const id of ids) {
        try {
          const accepted = await ingest.release(Number(id), { force: flags.force })
          process.stdout.write(`${id}: released as ${accepted.id}${accepted.duplicate ? ' (already stored)' : ''} to ${accepted.targets.join(', ') || 'no target'}\n`)
        } catch (err) {
          failed++
          process.stdout.write(`${id}: not released: ${(err as Error).message}\n`)
        }
      }
    } finally {
      await outbox.close()
    }
    if (failed > 0) process.exitCode = 1
  } finally {
    database.close()
  }
}

function fail (message: string): never {
  process.stderr.write(`storehook: ${message}\n`)
  process.exit(1)
}

function configOrExit (): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      force: { type: 'boolean' },
      limit: { type: 'string' },
      type: { type: 'string' },
      subtype: { type: 'string' },
      environment: { type: 'string' },
      'bundle-id': { type: 'string' },
      'original-transaction-id': { type: 'string' },
      verification: { type: 'string' },
      'delivery-status': { type: 'string' },
      target: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      to: { type: 'string' },
      'only-failures': { type: 'boolean' },
      id: { type: 'string', multiple: true }
    },
    allowPositionals: true,
    strict: false
  })
  if (values.version === true) {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  const command = positionals[0] ?? 'serve'
  if (values.help === true || command === 'help') {
    // The command line indexes the table: only its own keys, never what an object inherits.
    const asked = positionals[command === 'help' ? 1 : 0] ?? ''
    process.stdout.write(`${Object.hasOwn(COMMAND_HELP, asked) ? COMMAND_HELP[asked] : HELP}\n`)
    return
  }
  try {
    await run(command, values, positionals)
  } catch (err) {
    // Some configuration is checked only when used: a root certificate file
    // when the verifier loads it, DATABASE_PATH when the file is opened.
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
}

async function run (command: string, values: Values, positionals: string[]): Promise<void> {
  switch (command) {
    case 'serve':
      await startServer(configOrExit())
      return
    case 'migrate': {
      const config = configOrExit()
      const database = openDatabase(config.databasePath, { busyTimeoutMs: 30_000 })
      try {
        const before = database.pendingMigrations()
        migrate(database)
        process.stdout.write(`${config.databasePath}: ${before} migration(s) applied, schema up to date.\n`)
      } finally {
        database.close()
      }
      return
    }
    case 'prune': {
      const config = configOrExit()
      const database = openDatabase(config.databasePath, { busyTimeoutMs: 30_000 })
      migrate(database)
      database.close()
      const outbox = new Outbox({ path: config.databasePath, busyTimeoutMs: 30_000 })
      try {
        const pruned = await pruneAll(outbox, config.retentionMs)
        process.stdout.write(config.retentionMs === 0 ? 'RETENTION_DAYS=0: nothing is ever pruned.\n' : `Pruned ${pruned} delivered notification(s) older than ${config.retentionMs / 86_400_000} day(s).\n`)
      } finally {
        await outbox.close()
      }
      return
    }
    case 'status':
      statusCommand(configOrExit())
      return
    case 'replay':
      await replayCommand(configOrExit(), values)
      return
    case 'quarantine': {
      const config = configOrExit()
      const limit = values.limit === undefined ? 50 : Number(values.limit)
      if (!Number.isInteger(limit) || limit < 1) fail('--limit must be a whole number')
      await quarantineCommand(config, positionals.slice(1), { force: values.force === true, limit })
      return
    }
    case 'backfill':
      await backfillCommand(configOrExit(), values, fail)
      return
    case 'request-test-notification':
      await testNotificationCommand(configOrExit(), values, fail)
      return
    default:
      fail(`unknown command "${command}". Run storehook --help.`)
  }
}
