// Writes schemas/decoded-notification.v1.json from src/decoded/schema.ts,
// the one source (test/decoded/schema.test.ts fails while they differ):
//   node --import tsx scripts/decoded-schema.ts
import { writeFileSync } from 'node:fs'
import { schemaText } from '../src/decoded/schema.ts'

writeFileSync(new URL('../schemas/decoded-notification.v1.json', import.meta.url), schemaText())
