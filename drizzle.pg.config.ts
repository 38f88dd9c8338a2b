// The PostgreSQL engine's migrations (issue 16): `npm run db:generate:pg`
// writes them into their own folder, beside SQLite's in drizzle/.
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema-pg.ts',
  out: './drizzle/pg'
})
