// The PostgreSQL schema says again what the SQLite one says (drizzle needs
// one table object per dialect), so this holds them to each other: the same
// tables, columns, nullability, defaults and indexes, by name.
import { is } from 'drizzle-orm'
import { getTableConfig as pgConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import t from 'tap'
import * as sqlite from '../../src/db/schema.ts'
import * as postgres from '../../src/db/schema-pg.ts'


interface Shape { columns: Map<string, string>, indexes: Map<string, string> }

// Each column as "notNull default", each index as "unique columns where", by name.
function shape (columns: Array<{ name: string, notNull: boolean, default: unknown }>, indexes: Array<{ config: { name?: string, unique: boolean, columns: unknown[], where?: unknown } }>): Shape {
  return {
    columns: new Map(columns.map((c) => [c.name, `${c.notNull ? 'not null' : 'null'} default ${String(c.default)}`])),
    indexes: new Map(indexes.map((i) => [String(i.config.name), `${i.config.unique ? 'unique ' : ''}(${i.config.columns.map((c) => (c as { name: string }).name).join(', ')})${i.config.where === undefined ? '' : ' partial'}`]))
  }
}

const sqliteTables = new Map(Object.values(sqlite).filter((v) => is(v, SQLiteTable)).map((table) => sqliteConfig(table)).map((c) => [c.name, shape(c.columns, c.indexes)]))
const pgTables = new Map(Object.values(postgres).filter((v) => is(v, PgTable)).map((table) => pgConfig(table)).map((c) => [c.name, shape(c.columns, c.indexes)]))

t.test('the same tables', async (t) => {
  t.same([...pgTables.keys()].filter((n) => !sqliteTables.has(n)), [], 'none on PostgreSQL alone')
  t.same([...sqliteTables.keys()].filter((n) => !pgTables.has(n)), [], 'none on SQLite alone')
})

for (const [name, lite] of sqliteTables) {
  t.test(`${name}: the same columns and indexes`, async (t) => {
    const pg = pgTables.get(name)!
    for (const [column, spec] of lite.columns) t.equal(pg.columns.get(column), spec, `column ${column}`)
    t.same([...pg.columns.keys()].filter((c) => !lite.columns.has(c)), [], 'no other column on PostgreSQL')
    t.same(Object.fromEntries(pg.indexes), Object.fromEntries(lite.indexes), 'the same indexes')
  })
}

t.test('the decoded fields are the same list', async (t) => {
  t.same(Object.keys(postgres.indexedColumns), Object.keys(sqlite.indexedColumns))
})
