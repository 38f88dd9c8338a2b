// Calls the admin JSON API as a script would: with the bearer token.
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './app.ts'
import { makeChain, makeRoot, notificationPayload, signNotification } from './apple-chain.ts'

export const ADMIN_TOKEN = 'an-admin-token-of-enough-length'

export async function api (url: string, path: string, init: RequestInit = {}, token: string | null = ADMIN_TOKEN): Promise<{ status: number; json: any }> {
  const headers = new Headers(init.headers)
  if (token !== null) headers.set('authorization', `Bearer ${token}`)
  const res = await fetch(`${url}/admin/api${path}`, { ...init, headers })
  return { status: res.status, json: await res.json() }
}

// Enforcing verification against a fresh root that no test chain leads to:
// every signed notification is refused and quarantined (a release needs force).
export function enforceUntrustedRoot (t: { teardown: (fn: () => void) => void }): Record<string, string> {
  const path = join(tempDir(t), 'root.pem')
  writeFileSync(path, makeRoot().pem)
  return { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: path }
}

// A V2 notification signed by a chain of its own, which enforceUntrustedRoot refuses.
export function untrustedNotification (fields: Record<string, unknown> = {}, bundleId?: string): string {
  return JSON.stringify({ signedPayload: signNotification(makeChain(), { ...notificationPayload({ notificationUUID: randomUUID(), bundleId }), ...fields }) })
}
