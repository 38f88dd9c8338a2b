// The Fly.io and container files, checked against the program they deploy:
// the volume holds DATABASE_PATH, the machine never stops, the health check
// and port match the server, and Fly's kill signal and timeout match the
// graceful shutdown. `docker build` itself needs an engine; this does not.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { GRACE_MARGIN_MS, STOP_SIGNALS } from '../../src/server.ts'
import { tempDir } from '../helpers/app.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (file: string): string => readFileSync(join(root, file), 'utf8')

type Value = string | number | boolean
type Table = { [key: string]: Value | Table | Table[] }

// A reader for the TOML subset fly.toml uses (tables, arrays of tables, and
// string/number/boolean values). No TOML library is installed, and adding one
// for a test of one file is not worth a dependency.
function parseToml (text: string): Table {
  const rootTable: Table = {}
  let current = rootTable
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\s+#.*$|^\s*#.*$/, '').trim()
    if (line === '') continue
    const header = /^(\[\[?)([A-Za-z0-9_.-]+)\]\]?$/.exec(line)
    if (header !== null) {
      const path = header[2]!.split('.')
      let table = rootTable
      for (const [i, key] of path.entries()) {
        const last = i === path.length - 1
        if (last && header[1] === '[[') {
          const list = (table[key] ??= []) as Table[]
          list.push({})
          table = list[list.length - 1]!
        } else {
          const next = table[key] ??= {}
          table = Array.isArray(next) ? next[next.length - 1]! : next as Table
        }
      }
      current = table
      continue
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line)
    if (kv === null) throw new Error(`fly.toml line ${n + 1}: not understood: ${raw}`)
    const v = kv[2]!
    if (/^"[^"\\]*"$/.test(v)) current[kv[1]!] = v.slice(1, -1)
    else if (v === 'true' || v === 'false') current[kv[1]!] = v === 'true'
    else if (/^-?\d+$/.test(v)) current[kv[1]!] = Number(v)
    else throw new Error(`fly.toml line ${n + 1}: value not understood: ${raw}`)
  }
  return rootTable
}

const seconds = (v: Value | Table | Table[] | undefined): number => {
  const m = /^(\d+)(s|m)?$/.exec(String(v))
  if (m === null) throw new Error(`not a duration: ${String(v)}`)
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1)
}

const fly = parseToml(read('fly.toml'))
const env = fly.env as Record<string, string>
const http = fly.http_service as Table
const mounts = fly.mounts as Table

t.test('fly.toml: the database file lives on the mounted volume', async (t) => {
  t.equal(dirname(env.DATABASE_PATH!), mounts.destination)
  t.type(mounts.source, 'string')
})

t.test('fly.toml: one machine always running, so the outbox keeps draining', async (t) => {
  t.equal(http.auto_stop_machines, 'off')
  t.ok(Number(http.min_machines_running) >= 1)
})

t.test('fly.toml: the health check and port are the server\'s', async (t) => {
  const checks = http.checks as Table[]
  t.ok(checks.some((c) => c.path === '/healthz' && c.method === 'GET'))
  t.equal(http.internal_port, Number(env.PORT))
  t.equal(http.force_https, true, 'Apple posts only over HTTPS')
})

t.test('fly.toml: the kill signal is handled and the timeout outlasts the graceful shutdown', async (t) => {
  t.ok((STOP_SIGNALS as readonly string[]).includes(String(fly.kill_signal)))
  const config = loadConfig(env)
  t.ok(seconds(fly.kill_timeout) * 1000 > config.shutdownTimeoutMs + GRACE_MARGIN_MS,
    `kill_timeout ${String(fly.kill_timeout)} > SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs} + ${GRACE_MARGIN_MS}`)
  t.equal(config.trustProxy, 'fly')
})

t.test('fly.toml: Fly scrapes /metrics on the private metrics port, which no public service exposes', async (t) => {
  const metrics = fly.metrics as Table
  const config = loadConfig(env)
  t.equal(metrics.path, '/metrics')
  t.equal(metrics.port, config.metricsPort, '[metrics] port is METRICS_PORT')
  t.not(metrics.port, http.internal_port, 'not the port the public service forwards to')
  t.equal(fly.services, undefined, 'no [[services]] that could publish it')
  t.equal(config.metricsToken, null, 'no token: Fly\'s scraper cannot send one')
})

t.test('fly.toml: the smallest machine, and V8 sized for it by NODE_OPTIONS', async (t) => {
  const vm = (fly.vm as Table[])[0]!
  t.equal(vm.size, 'shared-cpu-1x')
  t.equal(vm.memory, '256mb')
  const options = env.NODE_OPTIONS!.split(' ')
  // Node refuses to start on a flag NODE_OPTIONS may not carry; say which.
  for (const option of options) t.ok(process.allowedNodeEnvironmentFlags.has(option.split('=')[0]!), `${option} is allowed in NODE_OPTIONS`)
  const mb = (name: string): number => Number(options.find((o) => o.startsWith(`--${name}=`))?.split('=')[1])
  // A process started with them has the heap they name: the old generation's
  // cap plus the young generation's semi-spaces (V8 counts three of them).
  const limit = Number(execFileSync(process.execPath, ['-p', 'require("node:v8").getHeapStatistics().heap_size_limit'], {
    env: { ...process.env, NODE_OPTIONS: env.NODE_OPTIONS }
  }).toString()) / 2 ** 20
  t.ok(limit >= mb('max-old-space-size') && limit <= mb('max-old-space-size') + 4 * mb('max-semi-space-size'), `heap limit ${limit} MB`)
})

t.test('fly.toml reader refuses what it does not understand', async (t) => {
  t.throws(() => parseToml('a = 1\nports = [80, 443]'), /line 2: value not understood/)
  t.throws(() => parseToml('x = {a = 1}'), /line 1: value not understood/)
  t.throws(() => parseToml('a = 1\n\nwhat'), /line 3: not understood/)
})

t.test('Dockerfile: builds the binary, ships it alone, exposes the configured port', async (t) => {
  const docker = read('Dockerfile')
  const stages = docker.split(/^FROM /m).slice(1)
  t.equal(stages.length, 2, 'a build stage and a final stage')
  t.match(stages[0]!, /npm run build:binary/)
  t.match(stages[1]!, /^debian:bookworm-slim/)
  t.match(stages[1]!, /COPY --from=build \/src\/dist\/storehook \/usr\/local\/bin\/storehook/)
  t.match(stages[1]!, /ca-certificates/)
  t.equal(/^EXPOSE (\d+)$/m.exec(docker)?.[1], env.PORT)
  t.equal(/PORT=(\d+)/.exec(stages[1]!)?.[1], env.PORT)
  t.equal(/DATABASE_PATH=(\S+)/.exec(stages[1]!)?.[1], env.DATABASE_PATH)
  t.match(stages[1]!, /ENTRYPOINT \["\/usr\/local\/bin\/storehook-entrypoint"\]/)
  t.match(stages[1]!, /COPY deploy\/entrypoint\.sh \/usr\/local\/bin\/storehook-entrypoint/)
  t.ok((STOP_SIGNALS as readonly string[]).includes(/^STOPSIGNAL (\S+)$/m.exec(docker)?.[1] ?? ''))
  for (const ignored of ['node_modules', 'dist', '.git']) t.match(read('.dockerignore'), new RegExp(`^${ignored.replace('.', '\\.')}$`, 'm'))
})

// The entrypoint runs for real, with stand-ins for storehook and litestream on PATH that record their arguments.
function runEntrypoint (t: { teardown: (fn: () => void) => void }, extraEnv: Record<string, string>, args: string[] = []): { calls: string[]; status: number | null } {
  const dir = tempDir(t)
  const log = join(dir, 'calls.log')
  for (const name of ['storehook', 'litestream']) {
    writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >> "${log}"\n`)
    chmodSync(join(dir, name), 0o755)
  }
  const r = spawnSync(join(root, 'deploy', 'entrypoint.sh'), args, {
    env: { PATH: `${dir}:/usr/bin:/bin`, DATABASE_PATH: join(dir, 'data', 'storehook.db'), LITESTREAM_CONFIG: join(root, 'deploy', 'litestream.yml'), ...extraEnv }
  })
  return { calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [], status: r.status }
}

t.test('entrypoint: storehook serve, alone without Litestream', async (t) => {
  execFileSync('sh', ['-n', join(root, 'deploy', 'entrypoint.sh')])
  const plain = runEntrypoint(t, {})
  t.equal(plain.status, 0)
  t.same(plain.calls, ['storehook serve'])
  t.same(runEntrypoint(t, {}, ['migrate']).calls, ['storehook migrate'], 'other commands pass through')
})

t.test('entrypoint: with LITESTREAM_REPLICA_URL, restore if missing, then serve under litestream', async (t) => {
  const r = runEntrypoint(t, { LITESTREAM_REPLICA_URL: 's3://bucket/storehook' })
  t.equal(r.status, 0)
  t.equal(r.calls.length, 2)
  t.match(r.calls[0]!, /^litestream restore -config \S+litestream\.yml -if-db-not-exists -if-replica-exists \S+\/data\/storehook\.db$/)
  t.match(r.calls[1]!, /^litestream replicate -config \S+litestream\.yml -exec storehook serve$/)
  t.match(read('deploy/litestream.yml'), /path: \$\{DATABASE_PATH\}[\s\S]*url: \$\{LITESTREAM_REPLICA_URL\}/)
})
