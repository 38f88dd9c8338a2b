import { readFileSync } from 'node:fs'

// Read at run time rather than imported: package.json sits outside src/, and
// the built files and the sources are both two levels below it... or one.
function readVersion (): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'storehook' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return '0.0.0'
}

export const VERSION = readVersion()
export const USER_AGENT = `storehook/${VERSION}`
