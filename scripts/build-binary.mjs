#!/usr/bin/env node
// npm run build:binary -> dist/storehook: one executable that needs nothing
// beside it but its database file. Node's single executable applications
// (SEA) run one CommonJS script, so esbuild bundles the program (ESM-only
// dependencies included) into CJS; the SQLite addon, the migrations and the
// writer thread's own bundle ride along as SEA assets (see src/binary.ts).
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'sea')
const binary = join(root, 'dist', 'storehook')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const require = createRequire(import.meta.url)
const started = Date.now()

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

// import.meta.url does not exist in CJS; the shim gives each use a real file
// URL (the binary's own path), and every use in src/ that needs a file next
// to the sources checks BINARY first.
const shim = join(out, 'import-meta-url.mjs')
writeFileSync(shim, "export const importMetaUrl = require('node:url').pathToFileURL(__filename).href\n")

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  inject: [shim],
  define: {
    'import.meta.url': 'importMetaUrl',
    STOREHOOK_BINARY: JSON.stringify({ version: pkg.version })
  },
  // bin/storehook.js is the real entry; it imports the tsc output, which the bundle takes from src/ instead.
  plugins: [{
    name: 'cli-from-source',
    setup (b) {
      b.onResolve({ filter: /^\.\.\/dist\/cli\.js$/ }, () => ({ path: join(root, 'src', 'cli.ts') }))
    }
  }]
}

await build({ ...common, entryPoints: [join(root, 'bin', 'storehook.js')], outfile: join(out, 'storehook.cjs') })
await build({ ...common, entryPoints: [join(root, 'src', 'outbox', 'writer-thread.ts')], outfile: join(out, 'writer-thread.cjs') })

// Only what drizzle's migrator reads: the journal and the SQL files, for
// SQLite (drizzle/) and PostgreSQL (drizzle/pg/), under their paths relative
// to drizzle/ so that the binary writes them out as the same tree.
const migrations = {}
const drizzleDir = join(root, 'drizzle')
for (const folder of ['', 'pg/']) {
  const sql = readdirSync(join(drizzleDir, folder)).filter((f) => f.endsWith('.sql'))
  for (const file of [`${folder}meta/_journal.json`, ...sql.map((f) => folder + f)]) {
    migrations[file] = readFileSync(join(drizzleDir, file), 'utf8')
  }
}
writeFileSync(join(out, 'migrations.json'), JSON.stringify(migrations))

const addon = join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node')
const seaConfig = {
  main: join(out, 'storehook.cjs'),
  output: join(out, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  assets: {
    'better_sqlite3.node': addon,
    'migrations.json': join(out, 'migrations.json'),
    'writer-thread.cjs': join(out, 'writer-thread.cjs')
  }
}
writeFileSync(join(out, 'sea-config.json'), JSON.stringify(seaConfig, null, 2))
execFileSync(process.execPath, ['--experimental-sea-config', join(out, 'sea-config.json')], { stdio: 'inherit' })

rmSync(binary, { force: true })
copyFileSync(process.execPath, binary)
chmodSync(binary, 0o755)
execFileSync(process.execPath, [
  require.resolve('postject/dist/cli.js'), binary, 'NODE_SEA_BLOB', join(out, 'sea-prep.blob'),
  '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
], { stdio: 'inherit' })

const mb = (statSync(binary).size / 1_048_576).toFixed(1)
process.stdout.write(`${relative(root, binary)}: ${mb} MB, Node ${process.version}, built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
