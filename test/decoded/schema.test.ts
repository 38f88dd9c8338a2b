// The JSON Schema in the repository is the one storehook builds and serves:
// schemas/decoded-notification.v1.json equals src/decoded/schema.ts and
// GET /schemas/decoded-notification.v1.json (public), and a strict
// validator compiles the file as a receiver would load it.
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { schemaText } from '../../src/decoded/schema.ts'
import { startApp } from '../helpers/app.ts'

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
