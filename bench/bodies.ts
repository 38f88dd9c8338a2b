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

// Apple-shaped V2 bodies for the footprint bench (issue 15): the outer JWS
// header carries a three-certificate x5c chain, and the payload's
// signedTransactionInfo and signedRenewalInfo are JWSs that carry the same
// chain in their own headers, so it is base64url-encoded a second time. This
// repetition is what a chain-aware codec removes, so the bench must send it;
// the other templates' 'MIIB'+'A'... certificates would compress unrealistically.
// chain 'generated' (default): a fresh chain from test/helpers/apple-chain.ts
// (P-256, ~420 bytes of DER each), the chain issue 15's "now" figures used.
// chain 'apple': Apple's real production chain from test/fixtures/apple/certs
// (2,454 bytes of DER, about twice as large). The signatures are random bytes
// of the right length (the bench runs with VERIFY_SIGNATURES=off, and a real
// signature is as incompressible as random bytes); the splice below would
// invalidate a real one anyway. Only the notificationUUID (and so the outer
// signature) differs between bodies: what varies in Apple's is a few fields
// of the payload, never the chain.
export interface AppleBodies {
  next: () => Buffer
  // The size of every body, in bytes (they differ by nothing but the UUID).
  size: number
  chain: 'generated' | 'apple'
  // Total DER bytes of the chain's three certificates.
  chainDerBytes: number
}

// `size`: the generated chain makes an 11.1 KB body; issue 15 measured 12.6 KB,
// so a `filler` field of random base64url in the payload's data makes up the
// difference. Random, not 'x' repeated: a compressor must not be flattered by
// the padding (it is the least compressible part of the body). With Apple's
// chain the body is larger than 12.6 KB already and gets no filler.
export async function appleShapedBodies (chain: 'generated' | 'apple' = 'generated', size = 12_600): Promise<AppleBodies> {
  const { randomBytes } = await import('node:crypto')
  let x5c: string[]
  if (chain === 'apple') {
    const { readFileSync } = await import('node:fs')
    const cert = (name: string): string => readFileSync(new URL(`../test/fixtures/apple/certs/${name}.cer`, import.meta.url)).toString('base64')
    x5c = [cert('Prod-ECC-MAS-iTunes-Receipt-Signing-2025-2027'), cert('AppleWWDRCA-G6'), cert('AppleRootCA-G3')]
  } else {
    const { makeChain } = await import('../test/helpers/apple-chain.ts')
    x5c = makeChain().x5c
  }
  const sig = (): string => randomBytes(64).toString('base64url')
  const header = b64(JSON.stringify({ alg: 'ES256', x5c }))
  const now = Date.now()
  // The fields of Apple's JWSTransactionDecodedPayload and
  // JWSRenewalInfoDecodedPayload for a renewed subscription.
  const tx = `${header}.${b64(JSON.stringify({
    transactionId: '2000000777777777', originalTransactionId: '2000000111111111', webOrderLineItemId: '2000000055555555',
    bundleId: 'com.example.app', productId: 'com.example.app.pro.monthly', subscriptionGroupIdentifier: '21000001',
    purchaseDate: now, originalPurchaseDate: now - 31_536_000_000, expiresDate: now + 2_592_000_000, quantity: 1,
    type: 'Auto-Renewable Subscription', appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138', inAppOwnershipType: 'PURCHASED',
    signedDate: now, environment: 'Production', transactionReason: 'RENEWAL', storefront: 'USA', storefrontId: '143441',
    price: 9990, currency: 'USD', appTransactionId: '704289579925498080'
  }))}.${sig()}`
  const renewal = `${header}.${b64(JSON.stringify({
    originalTransactionId: '2000000111111111', autoRenewProductId: 'com.example.app.pro.monthly', productId: 'com.example.app.pro.monthly',
    autoRenewStatus: 1, renewalPrice: 9990, currency: 'USD', signedDate: now, environment: 'Production',
    recentSubscriptionStartDate: now - 31_536_000_000, renewalDate: now + 2_592_000_000, appTransactionId: '704289579925498080',
    appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138', eligibleWinBackOfferIds: []
  }))}.${sig()}`
  // The UUID sits at a 3-byte-aligned offset of the payload so its base64url
  // can be spliced between precomputed halves (as bodyFactory does): the load
  // generator shares the two cores and must not sign 12 KB per request.
  let prefix = '{"notificationType":"DID_RENEW","notificationUUID":"'
  while (prefix.length % 3 !== 0) prefix = ' ' + prefix
  const suffix = (filler: string): string => `","data":{"appAppleId":1234567890,"bundleId":"com.example.app","bundleVersion":"42","environment":"Production","signedTransactionInfo":"${tx}","signedRenewalInfo":"${renewal}","status":1${filler}},"version":"2.0","signedDate":${now}}`
  const head = Buffer.from(`{"signedPayload":"${header}.${b64(prefix)}`)
  const outerSig = sig()
  const tailOf = (filler: string): Buffer => Buffer.from(`${b64(suffix(filler))}.${outerSig}"}`)
  let tail = tailOf('')
  const missing = size - (head.length + 48 + tail.length)
  // Each character of the payload takes 4/3 on the wire; 12 for ,"filler":"".
  if (missing > 0) tail = tailOf(`,"filler":"${randomBytes(Math.ceil(missing * 3 / 4)).toString('base64url').slice(0, Math.max(0, Math.floor(missing * 3 / 4) - 12))}"`)
  const bodySize = head.length + 48 + tail.length
  return {
    next: () => Buffer.concat([head, Buffer.from(b64(randomUUID())), tail], bodySize),
    size: bodySize,
    chain,
    chainDerBytes: x5c.reduce((n, c) => n + Buffer.from(c, 'base64').length, 0)
  }
}
