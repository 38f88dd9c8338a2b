// A process that starts a throwaway cluster, says where it is, and then ends
// the way argv[2] says: an uncaught error once the parent writes a line (it
// has seen the cluster up by then), or waiting for a signal. For
// postgres-helper.test.ts, which checks that the cluster goes with it.
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { startPostgres } from '../helpers/postgres.ts'

const cluster = await startPostgres()
process.stdout.write(`${JSON.stringify({ dir: cluster.dir, port: cluster.port })}\n`)
if (process.argv[2] === 'throw') {
  await once(createInterface({ input: process.stdin }), 'line')
  throw new Error('a test failed')
}
// Kept alive until the signal arrives.
setInterval(() => {}, 60_000)
