// The single executable (`npm run build:binary`, scripts/build-binary.mjs)
// carries inside itself what a checkout keeps in files: the SQLite addon, the
// migrations and the writer thread's code, as Node SEA assets. The build
// defines STOREHOOK_BINARY; in source and tsc output it is never declared, so
// `typeof` reads 'undefined' and every caller takes its ordinary path.
import type * as Sea from 'node:sea'

declare const STOREHOOK_BINARY: { version: string } | undefined

export const BINARY: { version: string } | null = typeof STOREHOOK_BINARY === 'undefined' ? null : STOREHOOK_BINARY

// Asset names, shared with the build script.
export const ASSET_SQLITE_ADDON = 'better_sqlite3.node'
export const ASSET_MIGRATIONS = 'migrations.json'
export const ASSET_WRITER = 'writer-thread.cjs'

export function binaryAsset (name: string): Buffer {
  // Looked up at run time: node:sea exists only in Node (not Deno), and only the binary asks.
  const sea = process.getBuiltinModule('node:sea') as typeof Sea
  return Buffer.from(sea.getAsset(name))
}
