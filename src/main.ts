// The command line from source, without a build step: Deno starts here
// (npm run start:deno runs the .ts files as they are), as Node starts at
// bin/storehook.js on the tsc output.
import { main } from './cli.ts'

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`storehook: ${(err as Error | undefined)?.stack ?? String(err)}\n`)
  process.exit(1)
})
