// The `storehook` command: serve and the operator's tools, all on the same
// configuration and database file. The server, the ingest path and the
// PostgreSQL copy are imported by the commands that run them: the rest
// (help, a refused configuration, status) then starts in a fraction of the
// time, since loading Fastify with every plugin costs most of a second.
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { API_ENVIRONMENTS, DELIVERY_STATUSES, VERIFICATION_STATUSES, type DeliveryStatus, type VerificationStatus } from './db/vocabulary.ts'
import { compactAll } from './outbox/compaction.ts'
import { storageName } from './outbox/open-storage.ts'
import { pruneAll } from './outbox/retention.ts'
import type { NotificationFilter } from './outbox/engine.ts'
import { CommandError, fail, parseCommand, withOutbox, type Command, type Values } from './ops/command-line.ts'
import { FILTER_FIELDS, filterFrom, type FilterField, type FilterForm } from './ops/notifications.ts'
import { quarantinePage } from './ops/quarantine.ts'
import { MAX_BULK_REPLAY, replayMatching } from './ops/replay.ts'
import { targetsWithHealth, unknownTargets } from './ops/targets.ts'
import { isoTime, parseWhenFlag } from './ops/when.ts'
import { VERSION } from './version.ts'
import { backfill, requestTestNotification } from './appstore/commands.ts'
import { isPostgresUrl } from './config.ts'

const HELP = `storehook ${VERSION}: one durable URL for Apple's App Store Server Notifications.

Usage: storehook <command> [options]

Commands:
  serve      receive notifications and forward them to every target (default)
  migrate    apply pending database migrations and exit
  status     the overview: last notification per environment, each target's health
  replay     deliver matching notifications again (filters as the admin API)
  prune      delete delivered notifications older than RETENTION_DAYS now
  compact    compress the bodies stored before compression now
  quarantine list refused payloads, or release them into the outbox
  backfill   fetch missed notifications from Apple's notification history
  request-test-notification  ask Apple for a TEST notification and follow it to every target
  copy       copy the database into an empty PostgreSQL database (storehook stopped)
  alert-test send a test alert to every alert destination

Options:
  --help     show help for a command
  --version  print the version

Configuration comes from environment variables (see README.md).`

const FILTER_HELP = `Filters (all optional, combined with AND):
  --type TYPE  --subtype SUBTYPE  --environment ${API_ENVIRONMENTS.join('|')}
  --bundle-id ID  --original-transaction-id ID  --verification ${VERIFICATION_STATUSES.join('|')}
  --delivery-status ${DELIVERY_STATUSES.join('|')}  --target NAME
  --since WHEN  --until WHEN     (an ISO date, or a duration back from now: 90m, 48h, 7d)`

function whenFlag (flag: string, value: string | undefined, now: number): number | undefined {
  try {
    return parseWhenFlag(flag, value, now)
  } catch (err) {
    fail((err as Error).message)
  }
}

// A filter's flag is its field's name in kebab case (bundleId: --bundle-id).
const flagOf = (field: FilterField): string => field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

function filterOfFlags (values: Values): NotificationFilter {
  const now = Date.now()
  const given: FilterForm = {}
  for (const field of FILTER_FIELDS) {
    const value = values[flagOf(field)]
    if (typeof value === 'string') given[field] = value
  }
  return filterFrom(given, (field, value) => whenFlag(`--${field}`, value, now)!)
}

// Stored values came from senders (a forged JWS reaches the quarantine under
// enforce; V1 rows under log/off). Printed raw, ESC, OSC and BEL bytes would
// drive the operator's terminal (retitle it, clear it, forge lines, write the
// clipboard), and one field could run to a megabyte: control characters are
// shown escaped and each field is cut.
const PRINTABLE_MAX = 200
export function printable (value: string | null, fallback = '-'): string {
  if (value === null) return fallback
  // C0 (tab included: it separates columns), DEL, C1, and the bidi controls that reorder what follows.
  const escaped = value.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return escaped.length > PRINTABLE_MAX ? `${escaped.slice(0, PRINTABLE_MAX)}...` : escaped
}

const ago = (at: number | null, now: number): string => {
  const iso = isoTime(at)
  return iso === null || at === null ? '-' : `${iso} (${Math.round((now - at) / 60_000)} min ago)`
}

async function statusCommand (config: Config): Promise<void> {
  await withOutbox(config, async (outbox) => {
    const now = Date.now()
    const o = await outbox.overview(now)
    const out: string[] = [`storehook ${VERSION}, ${storageName(config)}`, '', 'Last notification received:']
    if (o.lastReceived.length === 0) out.push('  none yet')
    for (const r of o.lastReceived) out.push(`  ${printable(r.environment, 'unknown').padEnd(12)} ${ago(r.at, now)}  ${printable(r.type)}`)
    out.push('', 'Last 24 hours:')
    if (o.last24h.length === 0) out.push('  none')
    for (const r of o.last24h) out.push(`  ${printable(r.environment, 'unknown').padEnd(12)} ${r.verification.padEnd(11)} ${r.n}`)
    out.push('', 'Targets:')
    if (config.targets.length === 0) out.push('  none configured')
    for (const h of await targetsWithHealth(outbox, config.targets, now)) {
      out.push(`  ${h.name}: ${h.pending} pending, ${h.dead} dead, ${h.delivered} delivered; oldest pending ${ago(h.oldestPendingAt, now)}`)
      out.push(`    last success ${ago(h.lastSuccessAt, now)}; last error ${h.lastError === null ? '-' : `${printable(h.lastError)} at ${ago(h.lastErrorAt, now)}`}`)
    }
    process.stdout.write(out.join('\n') + '\n')
  })
}

async function replayCommand (config: Config, values: Values): Promise<void> {
  const filter = filterOfFlags(values)
  const to = typeof values.to === 'string' ? values.to.split(',').map((x) => x.trim()).filter(Boolean) : undefined
  const names = config.targets.map((t) => t.name)
  const unknown = unknownTargets(names, to)
  if (unknown.length > 0) fail(`--to: unknown target(s) ${unknown.join(', ')}; configured: ${names.join(', ') || 'none'}`)
  const ids = (Array.isArray(values.id) ? values.id : values.id === undefined ? [] : [values.id]).map(String)
  if (ids.length === 0 && Object.keys(filter).length === 0) fail('replay needs --id or at least one filter (see storehook replay --help)')
  await withOutbox(config, async (outbox) => {
    if (ids.length > 0) {
      let deliveries = 0
      for (const id of ids) {
        const replayed = await outbox.replay(id, to)
        if (replayed.length === 0) process.stdout.write(`${id}: no such notification, or no target to replay to\n`)
        deliveries += replayed.length
      }
      process.stdout.write(`Replayed ${ids.length} notification(s): ${deliveries} deliveries queued.\n`)
    } else {
      const r = await replayMatching(outbox, filter, to)
      process.stdout.write(`Replayed ${r.notifications} notification(s): ${r.deliveries} deliveries queued.${r.truncated ? ` Stopped at ${MAX_BULK_REPLAY}: narrow the filter and run again.` : ''}\n`)
    }
  })
}

async function quarantineList (config: Config, values: Values): Promise<void> {
  const limit = values.limit === undefined ? 50 : Number(values.limit)
  if (!Number.isInteger(limit) || limit < 1) fail('--limit must be a whole number')
  await withOutbox(config, async (outbox) => {
    const rows = (await quarantinePage(outbox, limit, null)).items
    if (rows.length === 0) process.stdout.write('The quarantine is empty.\n')
    for (const r of rows) {
      process.stdout.write(`${r.id}\t${isoTime(r.receivedAt) ?? '-'}\t${r.code}\t${printable(r.notificationType)}\t${printable(r.environment)}\t${printable(r.bundleId)}\t${r.releasedAs !== null ? 'released as ' + r.releasedAs : printable(r.reason)}\n`)
    }
  })
}

async function quarantineRelease (config: Config, ids: string[], force: boolean): Promise<void> {
  let failed = 0
  await withOutbox(config, async (outbox) => {
    // Warnings go to stderr: stdout is the command's answer.
    const log = pino({ level: 'warn' }, pino.destination(2))
    const { ingestFromConfig } = await import('./ingest/ingest.ts')
    const ingest = ingestFromConfig(config, { outbox, log })
    for (const id of ids) {
      try {
        const accepted = await ingest.release(Number(id), { force })
        process.stdout.write(`${id}: released as ${accepted.id}${accepted.duplicate ? ' (already stored)' : ''} to ${accepted.targets.join(', ') || 'no target'}\n`)
      } catch (err) {
        failed++
        process.stdout.write(`${id}: not released: ${printable((err as Error).message)}\n`)
      }
    }
  })
  if (failed > 0) process.exitCode = 1
}

// Sends the test alert to each destination now and says how each answered;
// exit code 1 when any refused. Destinations are named, never shown by URL.
async function alertTestCommand (config: Config): Promise<void> {
  if (config.alerts.destinations.length === 0) fail('no alert destination: set ALERT_URLS or "alerts" in STOREHOOK_CONFIG (see README.md, Alerts)')
  // Loaded here only: nodemailer and the delivery client are this command's alone.
  const { sendTestAlerts } = await import('./alerts/sender.ts')
  const outcomes = await sendTestAlerts(config)
  const lines = outcomes.map((o) => `  ${o.destination} (${o.format}): ${o.ok ? 'sent' : `refused: ${printable(o.error)}`}`)
  process.stdout.write(`Test alert:\n${lines.join('\n')}\n`)
  const refused = outcomes.filter((o) => !o.ok).length
  if (refused > 0) throw new CommandError(`${refused} of ${outcomes.length} alert destination(s) refused the test alert`)
}

// Each command's own flags: no command accepts another's (`status --to x` is
// a mistake to point out, not a flag to ignore).
const FILTER_OPTIONS = Object.fromEntries(FILTER_FIELDS.map((field) => [flagOf(field), { type: 'string' as const }]))

const QUARANTINE_HELP = `Usage: storehook quarantine [list] [--limit N]
       storehook quarantine release <id>... [--force]

Refused V2 payloads that were well-formed JWS are kept in a bounded quarantine
(QUARANTINE_MAX_ITEMS, QUARANTINE_MAX_BYTES). After fixing the configuration
(APPLE_BUNDLE_IDS, APPLE_ROOT_CERTS...), release puts a payload through the
same checks as the server and into the outbox; the running server forwards it.
--force accepts it even if it still does not verify, marked unverified.`

// `quarantine` alone lists.
const QUARANTINE: Record<string, Command> = {
  list: {
    help: QUARANTINE_HELP,
    options: { limit: { type: 'string' } },
    run: async (values) => { await quarantineList(loadConfig(), values) }
  },
  release: {
    help: QUARANTINE_HELP,
    options: { force: { type: 'boolean' } },
    args: { min: 1, max: Infinity, each: /^\d+$/, what: 'a quarantine id (a whole number, as quarantine list shows)' },
    run: async (values, ids) => { await quarantineRelease(loadConfig(), ids, values.force === true) }
  }
}

const COMMANDS: Record<string, Command> = {
  serve: {
    help: `Usage: storehook serve

Listens on HOST:PORT (default 0.0.0.0:8080), stores every notification in
DATABASE_PATH (default ./data/storehook.db) and forwards it to FORWARD_TARGETS
and the targets of STOREHOOK_CONFIG. Stops gracefully on SIGTERM or SIGINT.`,
    options: {},
    run: async () => {
      const config = loadConfig()
      const { startServer } = await import('./server.ts')
      await startServer(config)
    }
  },
  migrate: {
    help: `Usage: storehook migrate

Creates DATABASE_PATH if needed and applies the migrations it lacks. Safe to
run while the server runs, and safe to run twice.`,
    options: {},
    run: async () => {
      const config = loadConfig()
      await withOutbox(config, (_outbox, applied) => {
        process.stdout.write(`${storageName(config)}: ${applied} migration(s) applied, schema up to date.\n`)
      })
    }
  },
  status: {
    help: `Usage: storehook status

Prints the last notification received per environment (as App Store Connect
users check), the counts of the last 24 hours, and each target's health:
pending, dead, delivered, oldest pending, last success, last error. Reads the
database file directly; safe while the server runs.`,
    options: {},
    run: async () => { await statusCommand(loadConfig()) }
  },
  replay: {
    help: `Usage: storehook replay [filters] [--to TARGET,...] [--id ID]...

Delivers matching notifications again, to the targets each already has, or to
the targets named by --to (for example a newly added target). The running
server forwards them. At most ${MAX_BULK_REPLAY} per run.

${FILTER_HELP}`,
    options: { ...FILTER_OPTIONS, to: { type: 'string' }, id: { type: 'string', multiple: true } },
    run: async (values) => { await replayCommand(loadConfig(), values) }
  },
  prune: {
    help: `Usage: storehook prune

Deletes notifications received more than RETENTION_DAYS (default 30) ago whose
every delivery is delivered; pending and dead ones are never deleted. The
server does the same every ten minutes; this runs it now. Safe while the
server runs.`,
    options: {},
    run: async () => {
      const config = loadConfig()
      await withOutbox(config, async (outbox) => {
        const pruned = await pruneAll(outbox, config.retentionMs)
        process.stdout.write(config.retentionMs === 0 ? 'RETENTION_DAYS=0: nothing is ever pruned.\n' : `Pruned ${pruned} delivered notification(s) older than ${config.retentionMs / 86_400_000} day(s).\n`)
      })
    }
  },
  compact: {
    help: `Usage: storehook compact

Compresses the bodies of notifications and quarantined payloads stored before
storehook compressed bodies (each against its certificate chain, stored once).
The server does the same at each start, in small batches; this runs it now.
Safe while the server runs. Nothing depends on it: an uncompressed row reads
as well. The file does not shrink (freed pages are reused by later writes);
sqlite3's VACUUM gives the space back to the file system if needed.`,
    options: {},
    run: async () => {
      await withOutbox(loadConfig(), async (outbox) => {
        const { scanned, rewritten } = await compactAll(outbox)
        process.stdout.write(`Compressed ${rewritten} of ${scanned} uncompressed stored bodies.\n`)
      })
    }
  },
  backfill,
  'request-test-notification': requestTestNotification,
  'alert-test': {
    help: `Usage: storehook alert-test

Sends a test alert (event "test") to every alert destination (ALERT_URLS and
the "alerts" of STOREHOOK_CONFIG) now, and prints how each answered. Exits
with code 1 when a destination refused it. Needs no database.`,
    options: {},
    run: async () => { await alertTestCommand(loadConfig()) }
  },
  copy: {
    help: `Usage: storehook copy --to <postgres URL> [--batch-size N] [--max-batches N]

Copies the SQLite database of DATABASE_PATH into an empty PostgreSQL database,
to move from one machine to several: notifications (bodies as stored),
deliveries (pending ones keep their schedule and attempt count; dead ones stay
dead), attempts, the quarantine and backfill/catch-up runs. The target's
schema is created as the server creates it. Rows go in batches (default 500
a transaction); an interrupted copy continues where it stopped when run again,
and the copy is checked by counts per table and per delivery status at the end.

Stop storehook first: rows written to DATABASE_PATH during the copy may be
missed (the command fails if it sees the file change). A target that holds
rows not from this database is refused. --max-batches stops after N batches,
to copy in several sittings.`,
    options: { to: { type: 'string' }, 'batch-size': { type: 'string' }, 'max-batches': { type: 'string' } },
    run: async (values) => {
      const whole = (flag: string, fallback: number | null): number | null => {
        const value = values[flag]
        if (value === undefined) return fallback
        const n = Number(value)
        if (!Number.isInteger(n) || n < 1) throw new CommandError(`copy: --${flag} must be a whole number above 0`, 2)
        return n
      }
      const to = values.to
      // The URL is never repeated: it may hold a password.
      if (typeof to !== 'string') throw new CommandError('copy: needs --to <postgres URL> (see storehook copy --help)', 2)
      if (!isPostgresUrl(to) || !URL.canParse(to)) throw new CommandError('copy: --to must be a postgres:// or postgresql:// URL (the value is not shown: it may hold a password)', 2)
      const batchSize = whole('batch-size', 500)!
      const maxBatches = whole('max-batches', null)
      const config = loadConfig()
      const { copyToPostgres } = await import('./ops/copy.ts')
      await copyToPostgres(config.databasePath, to, { batchSize, maxBatches, say: (line) => { process.stdout.write(`${line}\n`) } })
    }
  },
  help: {
    help: HELP,
    options: {},
    args: { min: 0, max: 1, each: /^/, what: 'a command' },
    run: async (_values, [asked = '']) => { process.stdout.write(`${helpOf(asked)}\n`) }
  }
}

// The command line indexes the tables: only their own keys, never what an object inherits.
const helpOf = (name: string): string => name === 'quarantine' ? QUARANTINE_HELP : Object.hasOwn(COMMANDS, name) ? COMMANDS[name]!.help : HELP

const GLOBAL = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } } as const
const isGlobal = (word: string): boolean => ['--help', '-h', '--version', '-v'].includes(word)

// The commands an unknown flag belongs to, to say so when it was given to another.
const ownersOf = (flag: string): string[] => [
  ...Object.entries(COMMANDS).filter(([, c]) => Object.hasOwn(c.options, flag)).map(([name]) => name),
  ...Object.entries(QUARANTINE).filter(([, c]) => Object.hasOwn(c.options, flag)).map(([name]) => `quarantine ${name}`)
]

// Takes the command's name (and quarantine's subcommand) out of argv; what
// remains is checked against that command's options. --help and --version
// may come before the name.
function commandOf (argv: string[]): { label: string, command: Command | null, rest: string[] } {
  const rest = [...argv]
  const at = rest.findIndex((word) => !isGlobal(word))
  // `storehook --help` and `storehook --version` alone are about storehook, not serve.
  if (at === -1 && rest.length > 0) return { label: 'help', command: COMMANDS.help!, rest }
  // No name, or a flag first: `storehook` alone serves, and a flag is checked as serve's.
  if (at === -1 || rest[at]!.startsWith('-')) return { label: 'serve', command: COMMANDS.serve!, rest }
  const [name] = rest.splice(at, 1) as [string]
  if (name === 'quarantine') {
    const sub = rest[at] !== undefined && Object.hasOwn(QUARANTINE, rest[at]) ? rest.splice(at, 1)[0]! : 'list'
    return { label: `quarantine ${sub}`, command: QUARANTINE[sub]!, rest }
  }
  return { label: name, command: Object.hasOwn(COMMANDS, name) ? COMMANDS[name]! : null, rest }
}

export async function main (argv: string[]): Promise<void> {
  try {
    await run(argv)
  } catch (err) {
    // Some configuration is checked only when used: a root certificate file
    // when the verifier loads it, DATABASE_PATH when the file is opened.
    if (!(err instanceof CommandError) && !(err instanceof ConfigError)) throw err
    process.stderr.write(`storehook: ${err.message}\n`)
    process.exitCode = err instanceof CommandError ? err.exitCode : 1
  }
}

async function run (argv: string[]): Promise<void> {
  const { label, command, rest } = commandOf(argv)
  if (command === null) {
    if (rest.some(isGlobal)) return await COMMANDS.help!.run({}, [])
    throw new CommandError(`unknown command ${label} (see storehook --help)`, 2)
  }
  const { values, args } = parseCommand(label, command, rest, GLOBAL, ownersOf)
  if (values.version !== undefined) {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  if (values.help !== undefined) {
    process.stdout.write(`${command.help}\n`)
    return
  }
  await command.run(values, args)
}
