// Realistic V2 bodies (4-12 KB) with a distinct notificationUUID in every one,
// made fast enough that the load generator is not the bottleneck: the UUID sits
// at a 3-byte-aligned offset of the payload, so its base64url can be spliced
// between precomputed halves.
import { randomUUID } from 'node:crypto'

const b64 = (s: string): string => Buffer.from(s).toString('base64url')

function template (size: number): { head: Buffer; tail: Buffer } {
  const header = b64(JSON.stringify({ alg: 'ES256', x5c: ['MIIB' + 'A'.repeat(600), 'MIIC' + 'B'.repeat(800), 'MIID' + 'C'.repeat(700)] }))
  const tx = b64(JSON.stringify({ alg: 'ES256' })) + '.' + b64(JSON.stringify({
    originalTransactionId: '2000000111111111', transactionId: '2000000222222222', productId: 'pro.monthly',
    bundleId: 'com.example.app', purchaseDate: Date.now(), expiresDate: Date.now() + 2_592_000_000, type: 'Auto-Renewable Subscription'
  })) + '.' + 'S'.repeat(86)
  let prefix = '{"notificationType":"DID_RENEW","subtype":"BILLING_RECOVERY","notificationUUID":"'
  while (prefix.length % 3 !== 0) prefix = ' ' + prefix
  const fixed = `{"signedPayload":"${header}.` + '.' + 'S'.repeat(86) + '"}'
  const suffix0 = `","version":"2.0","signedDate":${Date.now()},"data":{"appAppleId":1234567890,"bundleId":"com.example.app","bundleVersion":"42","environment":"Production","signedTransactionInfo":"${tx}","signedRenewalInfo":"${tx}","status":1,"pad":"`
  const room = Math.max(0, Math.floor((size - fixed.length) * 3 / 4) - prefix.length - 36 - suffix0.length - 4)
  const suffix = suffix0 + 'x'.repeat(room) + '"}}'
  return {
    head: Buffer.from(`{"signedPayload":"${header}.${b64(prefix)}`),
    tail: Buffer.from(`${b64(suffix)}.${'S'.repeat(86)}"}`)
  }
}

export function bodyFactory (sizes: number[] = [4096, 6144, 8192, 10240, 12288]): () => Buffer {
  const templates = sizes.map(template)
  let i = 0
  return () => {
    const t = templates[i++ % templates.length]!
    return Buffer.concat([t.head, Buffer.from(b64(randomUUID())), t.tail])
  }
}

// Signed bodies for the enforce benchmark: a private Apple-shaped chain, so
// storehook verifies every one for real (APPLE_ROOT_CERTS points at its root).
// Signatures cover the payload, so these cannot be spliced: they are made up
// front, `count` of them, each with its own notificationUUID.
export async function signedBodies (count: number): Promise<{ next: () => Buffer; durableNext: () => Buffer; floorNext: () => Buffer; rootPem: string }> {
  const { makeChain, makeRoot, notificationPayload, signNotification } = await import('../test/helpers/apple-chain.ts')
  const root = makeRoot()
  const chain = makeChain({ root })
  const sizes = [4096, 6144, 8192, 10240, 12288]
  const bodies = Array.from({ length: count }, (_, i) => {
    const payload = notificationPayload({ notificationUUID: randomUUID(), signedDate: Date.now() })
    const pad = 'x'.repeat(Math.max(0, Math.floor((sizes[i % sizes.length]! - 3000) * 3 / 4)))
    return Buffer.from(JSON.stringify({ signedPayload: signNotification(chain, { ...payload, data: { ...(payload.data as object), pad } }) }))
  })
  let i = 0
  let j = 0
  let k = 0
  // The verifying floor has no dedupe, so it may cycle over a few; storehook
  // and the durable floor each get every body once, from their own cursor.
  return { next: () => bodies[i++ % bodies.length]!, durableNext: () => bodies[k++ % bodies.length]!, floorNext: () => bodies[j++ % 5000]!, rootPem: root.pem }
}
