// HTTPS for a self-hosted server: Apple posts only over TLS 1.2 or newer, and
// a certificate renewed by certbot or an ACME client is picked up without a
// restart (a restart would drop whatever Apple is posting at that moment).
import { X509Certificate } from 'node:crypto'
import { watch, readFileSync, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { Logger } from 'pino'

export const MIN_TLS_VERSION = 'TLSv1.2'

export interface TlsPaths {
  certPath: string
  keyPath: string
}

export interface TlsPair {
  cert: Buffer
  key: Buffer
}

export function readTlsPair (paths: TlsPaths): TlsPair {
  return { cert: readFileSync(paths.certPath), key: readFileSync(paths.keyPath) }
}

export function secureContextOptions (pair: TlsPair): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: MIN_TLS_VERSION }
}

interface ReloadableServer {
  setSecureContext: (options: SecureContextOptions) => void
}

// Watches the directories that hold the certificate and key, not the files:
// certbot, acme.sh and Kubernetes secret mounts replace a certificate by
// renaming a new file (or swapping a symlink) over the old one, so a watch on
// the old file's inode would see nothing after the first renewal. Any event
// in those directories re-reads both files; a pair that does not load (the
// key written but not yet the certificate, or a mismatch) is logged and the
// one in use stays. The short debounce lets a two-file renewal land first.
export function watchCertificate (server: ReloadableServer, paths: TlsPaths, initial: TlsPair, log: Logger, debounceMs = 250): () => void {
  let current = initial
  let timer: NodeJS.Timeout | null = null
  const reload = (): void => {
    timer = null
    let next: TlsPair
    try {
      next = readTlsPair(paths)
    } catch (err) {
      log.warn({ code: (err as NodeJS.ErrnoException).code }, 'TLS certificate or key unreadable; keeping the one in use.')
      return
    }
    if (next.cert.equals(current.cert) && next.key.equals(current.key)) return
    try {
      // createSecureContext throws on a bad PEM or a key that does not match;
      // setSecureContext would throw the same, but only after the check here.
      createSecureContext(secureContextOptions(next))
      server.setSecureContext(secureContextOptions(next))
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'New TLS certificate does not load; keeping the one in use.')
      return
    }
    current = next
    log.info('TLS certificate reloaded.')
  }
  const schedule = (): void => {
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(reload, debounceMs)
  }
  const names = new Set([basename(paths.certPath), basename(paths.keyPath)])
  const watchers: FSWatcher[] = []
  for (const dir of new Set([dirname(resolve(paths.certPath)), dirname(resolve(paths.keyPath))])) {
    const w = watch(dir, (_event, file) => {
      // A null name (some platforms) or a symlinked data dir (..data) still reloads: reading is cheap.
      if (file === null || names.has(file) || file.startsWith('..')) schedule()
    })
    w.on('error', (err) => log.warn({ err: { message: err.message } }, 'TLS certificate watch failed; renewals need a restart.'))
    watchers.push(w)
  }
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    if (timer !== null) clearTimeout(timer)
    for (const w of watchers) w.close()
  }
}

// When the served certificate (the first in the PEM file, the leaf) stops
// being valid, read from the file as it is now: the server reloads it when
// it changes (watchCertificate), so this is what clients get. null when the
// file cannot be read or parsed.
export function certificateExpiresAt (certPath: string): number | null {
  try {
    return Date.parse(new X509Certificate(readFileSync(certPath)).validTo)
  } catch {
    return null
  }
}
