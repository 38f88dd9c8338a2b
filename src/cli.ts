// The `storehook` command: serve and the operator's tools, all on the same
// configuration and database file.
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { createVerifier, defaultRootCertificates, loadRootCertificates } from './apple/verify.ts'
import { migrate, openDatabase } from './db/client.ts'
import { createIngest } from './ingest/ingest.ts'
import { Outbox } from './outbox/outbox.ts'
import { listQuarantine } from './outbox/store.ts'
import { startServer } from './server.ts'
import { VERSION } from './version.ts'

const HELP = `storehook ${VERSION}: one durable URL for Apple's App Store Server Notifications.

Usage: storehook <command> [options]

Commands:
  serve      receive notifications and forward them to every target (default)
  migrate    apply pending database migrations and exit
  quarantine list refused payloads, or release them into the outbox

Options:
  --help     show help for a command
  --version  print the version

Configuration comes from environment variables (see README.md).`

const COMMAND_HELP: Record<string, string> = {
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
  migrate: `Usage: storehook migrate

Creates DATABASE_PATH if needed and applies the migrations it lacks. Safe to
run while the server runs, and safe to run twice.`
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
        process.stdout.write(`${r.id}\t${new Date(r.receivedAt).toISOString()}\t${r.code}\t${r.notificationType ?? '-'}\t${r.environment ?? '-'}\t${r.bundleId ?? '-'}\t${r.releasedAs !== null ? 'released as ' + r.releasedAs : r.reason}\n`)
      }
      return
    }
    if (sub !== 'release' || ids.length === 0) fail('usage: storehook quarantine [list] | release <id>... [--force]')
    const outbox = new Outbox({ path: config.databasePath, busyTimeoutMs: 30_000 })
    // Warnings go to stderr: stdout is the command's answer.
    const log = pino({ level: 'warn' }, pino.destination(2))
    const roots = config.appleRootCerts.length > 0 ? loadRootCertificates(config.appleRootCerts) : defaultRootCertificates()
    const ingest = createIngest({
      outbox,
      targets: config.targets,
      policy: { mode: config.verify, bundleIds: config.bundleIds, sharedSecret: config.sharedSecret, signatures: createVerifier({ roots }) },
      quarantine: config.quarantine,
      log
    })
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
      limit: { type: 'string' }
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
    process.stdout.write(`${COMMAND_HELP[positionals[command === 'help' ? 1 : 0] ?? ''] ?? HELP}\n`)
    return
  }
  switch (command) {
    case 'serve': {
      const config = configOrExit()
      try {
        await startServer(config)
      } catch (err) {
        // A root certificate file is checked when the verifier loads it.
        if (err instanceof ConfigError) fail(err.message)
        throw err
      }
      return
    }
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
    case 'quarantine': {
      const config = configOrExit()
      const limit = values.limit === undefined ? 50 : Number(values.limit)
      if (!Number.isInteger(limit) || limit < 1) fail('--limit must be a whole number')
      await quarantineCommand(config, positionals.slice(1), { force: values.force === true, limit })
      return
    }
    default:
      fail(`unknown command "${command}". Run storehook --help.`)
  }
}
