#!/usr/bin/env node
// The built program (npm install builds it; `npm run build` refreshes it).
import { main } from '../dist/cli.js'

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`storehook: ${err?.stack ?? err}\n`)
  process.exit(1)
})
