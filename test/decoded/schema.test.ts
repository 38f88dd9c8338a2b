// The JSON Schema in the repository is the one storehook builds and serves:
// schemas/decoded-notification.v1.json equals src/decoded/schema.ts, and a
// strict validator compiles the file as a receiver would load it.
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { schemaText } from '../../scripts/decoded-schema.ts'

const FILE = new URL('../../schemas/decoded-notification.v1.json', import.meta.url)

t.test('the schema file in the repository is the one storehook serves', async (t) => {
  t.equal(readFileSync(FILE, 'utf8'), schemaText(), 'run `node --import tsx scripts/decoded-schema.ts` after changing src/decoded/schema.ts')
  t.doesNotThrow(() => new Ajv2020({ strict: true }).compile(JSON.parse(readFileSync(FILE, 'utf8')) as object), 'ajv compiles it in strict mode')
})
