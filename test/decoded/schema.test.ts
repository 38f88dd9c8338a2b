// The JSON Schema in the repository is the one storehook builds and serves:
// schemas/decoded-notification.v1.json equals src/decoded/schema.ts and
// GET /schemas/decoded-notification.v1.json (public), and a strict
// validator compiles the file as a receiver would load it.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { schemaText } from '../../src/decoded/schema.ts'
import { startApp, tempDir } from '../helpers/app.ts'

const FILE = readFileSync(new URL('../../schemas/decoded-notification.v1.json', import.meta.url), 'utf8')

t.test('the schema file in the repository is the one storehook builds', async (t) => {
  t.equal(FILE, schemaText(), 'run `node --import tsx scripts/decoded-schema.ts` after changing src/decoded/schema.ts')
  t.doesNotThrow(() => new Ajv2020({ strict: true }).compile(JSON.parse(FILE) as object), 'ajv compiles it in strict mode')
})

t.test('storehook serves it at a stable public path, no token asked', async (t) => {
  const s = await startApp(t, { ADMIN_TOKEN: 'an-admin-token-of-enough-length' })
  const res = await fetch(`${s.url}/schemas/decoded-notification.v1.json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/schema\+json/)
  t.equal(await res.text(), FILE, 'the bytes of the file in the repository')
})

t.test('the package exports the document\'s TypeScript types as storehook/decoded, for a receiver\'s compiler', async (t) => {
  const dir = tempDir(t)
  const root = fileURLToPath(new URL('../..', import.meta.url))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(root, join(dir, 'node_modules', 'storehook'))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  const source = (field: string): string => `import type { DecodedNotification } from 'storehook/decoded'
export const renewalDate = (doc: DecodedNotification): number | undefined => doc.notificationVersion === 2 ? doc.notification.data?.renewalInfo?.${field} : undefined\n`
  const tsc = (file: string, moduleResolution: string): { code: number; out: string } => {
    const run = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', moduleResolution === 'node16' ? 'node16' : 'esnext', '--moduleResolution', moduleResolution, file], { cwd: dir, encoding: 'utf8' })
    return { code: run.status ?? -1, out: run.stdout + run.stderr }
  }
  writeFileSync(join(dir, 'good.ts'), source('renewalDate'))
  writeFileSync(join(dir, 'typo.ts'), source('renewalDat'))
  for (const resolution of ['node16', 'bundler']) {
    const good = tsc('good.ts', resolution)
    t.equal(good.code, 0, `${resolution}: a receiver compiles against the types (${good.out.slice(0, 300)})`)
    t.match(tsc('typo.ts', resolution).out, /TS2322/, `${resolution}: and a misread field does not`)
  }
})
