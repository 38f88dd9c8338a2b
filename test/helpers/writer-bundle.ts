// The SQLite writer thread, bundled from src/ for the tests (see
// runWriterFrom in src/outbox/outbox.ts for why). Built on import, once per
// test process (about 50 ms), so it is never older than the sources; the file
// is named by its content, so processes with the same sources share it.
// esbuild is already the binary's bundler (scripts/build-binary.mjs).
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'
import { runWriterFrom } from '../../src/outbox/outbox.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

// Each module keeps its own import.meta.url (src/db/client.ts finds the
// migrations next to itself), not the bundle's.
const ownUrl: Plugin = {
  name: 'own-import-meta-url',
  setup (b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts'
    }))
  }
}

async function bundleWriter (): Promise<URL> {
  const built = await build({
    entryPoints: [join(root, 'src', 'outbox', 'writer-thread.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Dependencies load from node_modules as they do in the program; the
    // bundle sits inside node_modules so that Node finds them from there.
    packages: 'external',
    plugins: [ownUrl],
    sourcemap: 'inline',
    write: false,
    logLevel: 'warning'
  })
  const code = built.outputFiles[0]?.contents
  if (code === undefined) throw new Error('esbuild wrote no writer bundle')
  const dir = join(root, 'node_modules', '.cache', 'storehook')
  const file = join(dir, `writer-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`)
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    // Written whole, then renamed: another test process may be starting it.
    const partial = `${file}.${process.pid}`
    writeFileSync(partial, code)
    renameSync(partial, file)
  }
  return pathToFileURL(file)
}

runWriterFrom(await bundleWriter())
