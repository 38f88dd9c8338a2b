// Writes schemas/decoded-notification.v1.json from src/decoded/schema.ts,
// the one source (test/decoded/schema.test.ts fails while they differ):
//   node --import tsx scripts/decoded-schema.ts
import { writeFileSync } from 'node:fs'
import { decodedNotificationSchema } from '../src/decoded/schema.ts'

export const schemaText = (): string => JSON.stringify(decodedNotificationSchema, null, 2) + '\n'

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../schemas/decoded-notification.v1.json', import.meta.url), schemaText())
}
