// What every `storehook` command shares: how it declares and checks its
// arguments, how it says it failed, and how it reaches the database.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Config } from '../config.ts'
import type { Storage } from '../outbox/engine.ts'
import { openStorage } from '../outbox/open-storage.ts'

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>

export type Values = Record<string, string | boolean | undefined | Array<string | boolean>>

export interface Command {
  help: string
  // Only these flags: a mistyped one must stop the command, not be ignored.
  options: ParseArgsOptionsConfig
  // The words after the command's name (none unless declared).
  args?: { min: number, max: number, each: RegExp, what: string }
  run: (values: Values, args: string[]) => Promise<void>
}

// A command that did not do what was asked: one line on stderr and its exit
// code: 1, or 2 for a command line that was not understood (before anything
// ran). Thrown, never process.exit(), so that every finally closes what it opened.
export class CommandError extends Error {
  exitCode: number
  constructor (message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

export function fail (message: string): never {
  throw new CommandError(message)
}

const describe = (name: string, options: ParseArgsOptionsConfig): string => {
  const o = options[name]!
  return o.type === 'string' ? `--${name} ${name.toUpperCase()}` : `--${name}`
}

// Parses argv (the words after the command's name) against the command's
// own options, plus `global` (--help, --version: understood everywhere).
// Every unknown flag, value-less string flag, valued switch, repeated flag
// and stray argument is named in one CommandError (exit 2). `others` names the commands
// an unknown flag belongs to, to point at the likely mistake.
export function parseCommand (label: string, command: Command, argv: string[], global: ParseArgsOptionsConfig, others: (flag: string) => string[]): { values: Values, args: string[] } {
  const options = { ...global, ...command.options }
  const { values, positionals, tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true })
  // Help is asked for before the rest has to make sense.
  if (values.help !== undefined || values.version !== undefined) return { values, args: positionals }
  const problems: string[] = []
  const seen = new Set<string>()
  for (const token of tokens) {
    if (token.kind !== 'option') continue
    const spec = Object.hasOwn(options, token.name) ? options[token.name]! : null
    if (spec === null) {
      const owners = others(token.name)
      problems.push(`unknown option ${token.rawName}${owners.length > 0 ? ` (an option of ${owners.join(', ')})` : ''}`)
    } else if (spec.type === 'boolean' && token.inlineValue === true) {
      problems.push(`${token.rawName} takes no value`)
    } else if (spec.type === 'string' && token.value === undefined) {
      problems.push(`${token.rawName} needs a value (${describe(token.name, options)})`)
    } else if (spec.type === 'string' && token.inlineValue === false && token.value!.startsWith('-')) {
      // `--type --to x`: the value was forgotten, and the next flag taken for it.
      problems.push(`${token.rawName} needs a value, not ${token.value} (write ${token.rawName}=${token.value} if that is the value)`)
    } else if (seen.has(token.name) && spec.multiple !== true) {
      problems.push(`${token.rawName} given more than once`)
    }
    seen.add(token.name)
  }
  const args = command.args ?? { min: 0, max: 0, each: /^/, what: '' }
  for (const [i, word] of positionals.entries()) {
    if (i >= args.max) problems.push(`unexpected argument ${word}`)
    else if (!args.each.test(word)) problems.push(`${word} is not ${args.what}`)
  }
  if (positionals.length < args.min) problems.push(`needs ${args.what}`)
  if (problems.length > 0) throw new CommandError(`${label}: ${problems.join('; ')} (see storehook ${label.split(' ')[0]!} --help)`, 2)
  return { values, args: positionals }
}

const BUSY_TIMEOUT_MS = 30_000

// The commands' one way to the database: the storage opened and brought up
// to date (a command can be the first to run a new version), waiting for the
// running server's writes, and closed however fn ends. `applied` counts
// migrations. Its writer thread starts only if the command writes.
export async function withOutbox<T> (config: Config, fn: (outbox: Storage, applied: number) => T | Promise<T>): Promise<T> {
  const { outbox, applied } = await openStorage(config, { busyTimeoutMs: BUSY_TIMEOUT_MS })
  try {
    return await fn(outbox, applied)
  } finally {
    await outbox.close()
  }
}
