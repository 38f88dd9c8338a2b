// The `storehook` command: serve and the operator's tools, all on the same
// configuration and database file.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { migrate, openDatabase } from './db/client.ts'
import { startServer } from './server.ts'
import { VERSION } from './version.ts'

const HELP = `storehook ${VERSION}: one durable URL for Apple's App Store Server Notifications.

Usage: storehook <command> [options]

Commands:
  serve      receive notifications and forward them to every target (default)
  migrate    apply pending database migrations and exit

Options:
  --help     show help for a command
  --version  print the version

Configuration comes from environment variables (see README.md).`

const COMMAND_HELP: Record<string, string> = {
  serve: `Usage: storehook serve

Listens on HOST:PORT (default 0.0.0.0:8080), stores every notification in
DATABASE_PATH (default ./data/storehook.db) and forwards it to FORWARD_TARGETS
and the targets of STOREHOOK_CONFIG. Stops gracefully on SIGTERM or SIGINT.`,
  migrate: `Usage: storehook migrate

Creates DATABASE_PATH if needed and applies the migrations it lacks. Safe to
run while the server runs, and safe to run twice.`
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
    options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
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
    default:
      fail(`unknown command "${command}". Run storehook --help.`)
  }
}
