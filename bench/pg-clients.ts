// Which PostgreSQL client the PostgreSQL engine uses (issue 16), by
// measurement: postgres.js (`postgres`) against node-postgres (`pg`), each as
// drizzle's driver calls it for an ordinary query, and each with its
// statements prepared once per connection (a drizzle query built with
// .prepare(name)), on a
// throwaway cluster (test/helpers/postgres.ts), writing a row shaped like a
// notification (a text key, a few indexed text columns, a 5 KB bytea body):
//   - one INSERT committed on its own, one at a time (concurrency 1) and 32 at once;
//   - a transaction of 25 INSERTs, one statement after another;
// then whether each client connects, writes a bytea and reads it back under Deno.
//
//   node --import tsx bench/pg-clients.ts
//
// BENCH_SECONDS (default 3) per measurement, BENCH_ROUNDS (default 3)
// alternating rounds, median reported. PG_FSYNC=off for a cluster without
// fsync (the clients' own cost, with the disk flush taken away); the default
// is on, what a production commit pays.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import postgres from 'postgres'
import { startPostgres } from '../test/helpers/postgres.ts'

interface Client {
  // One statement, committed on its own (autocommit).
  insert: (id: string, body: Buffer) => Promise<void>
  // The statements in one transaction, each awaited before the next.
  transaction: (rows: Array<[string, Buffer]>) => Promise<void>
  // Reads a body back (for the Deno check: bytea must come back as the same bytes).
  body: (id: string) => Promise<Buffer>
  end: () => Promise<void>
}

const COLUMNS = 'id, notification_type, bundle_id, environment, received_at, body'
const VALUES = '$1, \'DID_RENEW\', \'com.example.app\', \'Production\', $2, $3'

// `prepare`: drizzle's postgres-js driver passes prepare: false for an
// ordinary query (true only for one built with .prepare(name)), and postgres.js
// then asks the server for the parameter types first: a second round trip.
const postgresJs = (prepare: boolean) => (url: string, max: number, table: string): Client => {
  const sql = postgres(url, { max, onnotice: () => {} })
  const text = `INSERT INTO ${table} (${COLUMNS}) VALUES (${VALUES})`
  return {
    insert: async (id, body) => { await sql.unsafe(text, [id, Date.now(), body], { prepare }) },
    transaction: async (rows) => {
      await sql.begin(async (tx) => {
        for (const [id, body] of rows) await tx.unsafe(text, [id, Date.now(), body], { prepare })
      })
    },
    body: async (id) => {
      const [row] = await sql.unsafe(`SELECT body FROM ${table} WHERE id = $1`, [id])
      return row!.body as Buffer
    },
    end: () => sql.end()
  }
}

// `name`: a named statement is parsed once per connection (drizzle's
// node-postgres driver names only a query built with .prepare(name)); unnamed,
// the parse travels with each query in the same round trip.
const nodePostgres = (name: string | undefined) => (url: string, max: number, table: string): Client => {
  const pool = new pg.Pool({ connectionString: url, max })
  const text = `INSERT INTO ${table} (${COLUMNS}) VALUES (${VALUES})`
  const insert = (c: pg.Pool | pg.PoolClient, id: string, body: Buffer) => c.query({ text, values: [id, Date.now(), body], ...(name === undefined ? {} : { name: `${name}_${table}` }) })
  return {
    insert: async (id, body) => { await insert(pool, id, body) },
    transaction: async (rows) => {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        for (const [id, body] of rows) await insert(client, id, body)
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw err
      } finally {
        client.release()
      }
    },
    body: async (id) => (await pool.query<{ body: Buffer }>(`SELECT body FROM ${table} WHERE id = $1`, [id])).rows[0]!.body,
    end: () => pool.end()
  }
}

const CLIENTS = {
  'postgres.js': postgresJs(false),
  'postgres.js prepared': postgresJs(true),
  'node-postgres': nodePostgres(undefined),
  'node-postgres named': nodePostgres('insert')
}
type ClientName = keyof typeof CLIENTS

async function createTable (url: string, table: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  await sql.unsafe(`DROP TABLE IF EXISTS ${table}`)
  await sql.unsafe(`CREATE TABLE ${table} (id text PRIMARY KEY, notification_type text NOT NULL, bundle_id text, environment text, received_at bigint NOT NULL, body bytea NOT NULL)`)
  await sql.unsafe(`CREATE INDEX ${table}_type ON ${table} (notification_type, received_at)`)
  await sql.end()
}

let sequence = 0
const nextId = (): string => `${process.pid}-${++sequence}`
const body = randomBytes(5 * 1024)

interface Figure { perSecond: number, p50: number, p99: number }

// `workers` loops, each doing `op` until the time is up; one latency per op.
async function measure (seconds: number, workers: number, op: () => Promise<void>): Promise<Figure> {
  const latencies: number[] = []
  const end = performance.now() + seconds * 1000
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < end) {
      const t = performance.now()
      await op()
      latencies.push(performance.now() - t)
    }
  }))
  latencies.sort((a, b) => a - b)
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? Number.NaN
  return { perSecond: latencies.length / seconds, p50: at(0.5), p99: at(0.99) }
}

const SCENARIOS = {
  'INSERT+COMMIT, concurrency 1': { workers: 1, op: (c: Client) => c.insert(nextId(), body) },
  'INSERT+COMMIT, concurrency 32': { workers: 32, op: (c: Client) => c.insert(nextId(), body) },
  'transaction of 25 INSERTs': { workers: 1, op: (c: Client) => c.transaction(Array.from({ length: 25 }, () => [nextId(), body] as [string, Buffer])) }
}
type ScenarioName = keyof typeof SCENARIOS

async function bench (url: string, seconds: number, rounds: number): Promise<Map<string, Figure[]>> {
  const figures = new Map<string, Figure[]>()
  for (let round = 0; round < rounds; round++) {
    for (const [scenario, { workers, op }] of Object.entries(SCENARIOS)) {
      // Alternate which client goes first, so neither always meets the warmer cache.
      const order = Object.keys(CLIENTS) as ClientName[]
      if (round % 2 === 1) order.reverse()
      for (const name of order) {
        const table = `bench_${name.replace(/\W/g, '_')}`
        await createTable(url, table)
        const client = CLIENTS[name](url, workers, table)
        await client.insert(nextId(), body) // connect before the clock starts
        const figure = await measure(seconds, workers, () => op(client))
        await client.end()
        const key = `${scenario}|${name}`
        figures.set(key, [...(figures.get(key) ?? []), figure])
      }
    }
  }
  return figures
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// Under Deno: each client connects, writes a bytea in a transaction and reads
// it back unchanged. Prints one JSON line: client name to "ok" or the error.
async function denoCheck (url: string): Promise<void> {
  const verdicts: Record<string, string> = {}
  for (const name of Object.keys(CLIENTS) as ClientName[]) {
    const table = `deno_${name.replace(/\W/g, '_')}`
    try {
      await createTable(url, table)
      const client = CLIENTS[name](url, 2, table)
      try {
        await client.transaction([['a', body], ['b', body]])
        const back = await client.body('a')
        verdicts[name] = Buffer.compare(Buffer.from(back), body) === 0 ? 'ok' : `bytea came back as ${back.length} different bytes`
      } finally {
        await client.end()
      }
    } catch (err) {
      verdicts[name] = String(err).split('\n')[0]!
    }
  }
  process.stdout.write(`${JSON.stringify(verdicts)}\n`)
}

const IN_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
if (IN_DENO) {
  await denoCheck(process.env.PG_URL!)
} else {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3)
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  const fsync = process.env.PG_FSYNC !== 'off'
  const cluster = await startPostgres({ fsync })
  try {
    process.stdout.write(`PostgreSQL clients, Node ${process.version}, fsync ${fsync ? 'on' : 'off'}, ${rounds} × ${seconds} s, median of rounds\n`)
    const figures = await bench(cluster.url, seconds, rounds)
    process.stdout.write('| scenario | client | per second | p50 ms | p99 ms |\n| --- | --- | ---: | ---: | ---: |\n')
    for (const [key, fs] of figures) {
      const [scenario, name] = key.split('|') as [ScenarioName, ClientName]
      process.stdout.write(`| ${scenario} | ${name} | ${median(fs.map((f) => f.perSecond)).toFixed(0)} | ${median(fs.map((f) => f.p50)).toFixed(2)} | ${median(fs.map((f) => f.p99)).toFixed(2)} |\n`)
    }
    const root = fileURLToPath(new URL('..', import.meta.url))
    const deno = spawnSync(`${root}node_modules/.bin/deno`, ['run', '-A', '--node-modules-dir=manual', fileURLToPath(import.meta.url)], {
      cwd: root, env: { ...process.env, PG_URL: cluster.url }, encoding: 'utf8', timeout: 120_000
    })
    const line = deno.stdout.trim().split('\n').pop() ?? ''
    process.stdout.write(`Under Deno: ${line !== '' ? line : `the check did not run: ${deno.stderr.slice(0, 500)}`}\n`)
  } finally {
    await cluster.stop()
  }
}
