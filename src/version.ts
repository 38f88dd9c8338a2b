import { readFileSync } from 'node:fs'
import { BINARY } from './binary.ts'

// Read at run time rather than imported: package.json sits outside src/
// (tsc's rootDir). Sources live in src/, built files in dist/: both one level
// below it; the second candidate covers a nested layout.
function readVersion (): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'storehook' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return '0.0.0'
}

// The binary has no package.json beside it: the build writes the version in.
export const VERSION = BINARY?.version ?? readVersion()
export const USER_AGENT = `storehook/${VERSION}`
