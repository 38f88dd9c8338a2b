// What a test needs to talk to the mock App Store Server API with storehook
// verifying signatures under enforce: a private root written where
// APPLE_ROOT_CERTS can point, a chain under it, and the API key variables.
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './app.ts'
import { ISSUER_ID, KEY_ID, KEY_PATH, startAppleApi, type MockAppleApi, type MockOptions } from './apple-api.ts'
import { startTarget, type Target } from './target.ts'
import { makeChain, makeRoot, notificationPayload, signNotification, type Chain } from './apple-chain.ts'

export interface Pki {
  chain: Chain
  // Verification under enforce against the test root.
  verifyEnv: Record<string, string>
  // verifyEnv and the App Store Server API keys, pointed at the mock.
  env: Record<string, string>
  // A DID_RENEW signed under the trusted root (Sandbox, com.example).
  sign: (o?: { notificationUUID?: string; signedDate?: number }) => string
}

export function applePki (t: Parameters<typeof tempDir>[0], apiUrl: string): Pki {
  const root = makeRoot()
  const rootPath = join(tempDir(t), 'root.pem')
  writeFileSync(rootPath, root.pem)
  const chain = makeChain({ root })
  const verifyEnv = { VERIFY_SIGNATURES: 'enforce', APPLE_ROOT_CERTS: rootPath }
  return {
    chain,
    verifyEnv,
    env: {
      ...verifyEnv,
      APPLE_ISSUER_ID: ISSUER_ID,
      APPLE_KEY_ID: KEY_ID,
      APPLE_PRIVATE_KEY_PATH: KEY_PATH,
      APPLE_BUNDLE_ID: 'com.example',
      APPLE_API_BASE_URL: apiUrl
    },
    sign: (o = {}) => signNotification(chain, {
      ...notificationPayload({ notificationUUID: o.notificationUUID ?? randomUUID(), signedDate: o.signedDate }),
      notificationType: 'DID_RENEW'
    })
  }
}

export interface AppleWorld {
  api: MockAppleApi
  pki: Pki
  target: Target
}

// The usual scene: the mock App Store Server API, keys and a trusted root for
// it, and one target; all closed when the test ends.
export async function appleWorld (t: Parameters<typeof tempDir>[0] & { teardown: (fn: () => Promise<void>) => void }, options: MockOptions = {}): Promise<AppleWorld> {
  const api = await startAppleApi(options)
  t.teardown(api.close)
  const target = await startTarget()
  t.teardown(target.close)
  return { api, pki: applePki(t, api.url), target }
}
