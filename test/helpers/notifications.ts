// Notification bodies for relay tests. They are unsigned (the relay tests
// run with VERIFY_SIGNATURES=off); signature tests use test/helpers/apple-chain.ts.
// Under enforce, a V1 is refused (V1_UNAUTHENTICATED) unless APPLE_SHARED_SECRET
// matches its `password` or ALLOW_UNAUTHENTICATED_V1=true.
import { randomBytes, randomUUID } from 'node:crypto'

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

export interface V2Options {
  notificationUUID?: string
  notificationType?: string
  subtype?: string
  environment?: string
  bundleId?: string
  signedDate?: number
  // Pads the body so tests and benchmarks see realistic 4-12 KB payloads.
  padTo?: number
}

// Padding that deflate cannot shrink: a padded body takes its size on disk
// too, as tests of full disks and size caps need it to.
const incompressible = (length: number): string => randomBytes(Math.ceil(length * 3 / 4) + 3).toString('base64url').slice(0, length)

export function v2Body (o: V2Options = {}): Buffer {
  const transaction = b64({ alg: 'ES256' }) + '.' + b64({
    originalTransactionId: '2000000111111111', transactionId: '2000000222222222', productId: 'pro.monthly', appAccountToken: '7e3fb20b-4cdb-47cc-936d-99d65f608138'
  }) + '.sig'
  const payload = {
    notificationType: o.notificationType ?? 'DID_RENEW',
    ...(o.subtype !== undefined ? { subtype: o.subtype } : {}),
    notificationUUID: o.notificationUUID ?? randomUUID(),
    version: '2.0',
    signedDate: o.signedDate ?? Date.now(),
    data: {
      appAppleId: 1234567890,
      bundleId: o.bundleId ?? 'com.example.app',
      bundleVersion: '42',
      environment: o.environment ?? 'Sandbox',
      signedTransactionInfo: transaction,
      signedRenewalInfo: transaction,
      status: 1,
      ...(o.padTo !== undefined ? { padding: incompressible(Math.max(0, o.padTo - 900)) } : {})
    }
  }
  const jws = b64({ alg: 'ES256', x5c: ['AAAA', 'BBBB', 'CCCC'] }) + '.' + b64(payload) + '.' + Buffer.alloc(64, 1).toString('base64url')
  // Apple's exact formatting is not JSON.stringify's: keep a space so tests
  // prove the bytes are forwarded as received, not re-serialised.
  return Buffer.from(`{"signedPayload": "${jws}"}`)
}

export function v1Body (o: { type?: string; environment?: string; bid?: string; password?: string } = {}): Buffer {
  return Buffer.from(JSON.stringify({
    notification_type: o.type ?? 'DID_RENEW',
    environment: o.environment ?? 'PROD',
    bid: o.bid ?? 'com.example.app',
    bvrs: '42',
    password: o.password ?? 'shared-secret-value',
    auto_renew_status: 'true',
    auto_renew_product_id: 'pro.monthly',
    unified_receipt: {
      status: 0,
      environment: 'Production',
      latest_receipt: 'MIIT' + 'A'.repeat(2000),
      latest_receipt_info: [{ original_transaction_id: '1000000111111111', transaction_id: '1000000222222222', product_id: 'pro.monthly' }]
    }
  }, null, 1))
}
