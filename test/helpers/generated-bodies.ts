// Seeded bodies of every shape the ingest can meet, for the tests that prove
// a stored body comes back byte for byte (test/unit/body-codec.test.ts for
// the codec, test/unit/bodies.test.ts through the storage): V2 with one or
// two chains, past deflate's window, V1, random JSON, garbage, cut bodies.
import { prng } from '../fuzz/generate.ts'
import type { Chain } from './apple-chain.ts'

const b64 = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-"\\/\n\té€𝄞中文ü\u0000\u2028'
// By code point, so a surrogate pair is never split.
const CHARS = [...ALPHABET]
const SPACES = ['', ' ', '  ', '\n', '\r\n', '\t', ' \n\t ']

export function generator (seed: number, chains: Chain[]) {
  const r = prng(seed)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const text = (n: number): string => Array.from({ length: n }, () => pick(CHARS)).join('')
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = int(256)
    return b
  }
  // Long text as a sender's payload repeats itself: random, but not all of it.
  const long = (n: number): string => text(200).repeat(Math.ceil(n / 200)).slice(0, n - 50) + text(50)
  const value = (depth: number): unknown => {
    const k = int(depth > 2 ? 4 : 6)
    if (k === 0) return int(1e9) * (r() < 0.5 ? 1 : -1) / (r() < 0.3 ? 7 : 1)
    if (k === 1) return text(int(40))
    if (k === 2) return pick([true, false, null])
    if (k === 3) return text(int(8))
    if (k === 4) return Array.from({ length: int(5) }, () => value(depth + 1))
    return Object.fromEntries(Array.from({ length: int(6) }, () => [text(1 + int(10)), value(depth + 1)]))
  }
  // A fake chain: random certificates, random header field order.
  const fakeX5c = (): string[] => Array.from({ length: 1 + int(3) }, () => 'MII' + bytes(300 + int(900)).toString('base64'))
  const x5c = (): string[] => (r() < 0.5 ? pick(chains).x5c : fakeX5c())
  const header = (chain: string[]): string => b64(r() < 0.5 ? JSON.stringify({ alg: 'ES256', x5c: chain }) : JSON.stringify({ x5c: chain, alg: 'ES256' }))
  const signature = (): string => bytes(64).toString('base64url')
  const jws = (chain: string[], payload: unknown): string => `${header(chain)}.${b64(JSON.stringify(payload))}.${signature()}`
  // The outer JSON as a sender might lay it out: any whitespace, any order.
  const wrap = (fields: Array<[string, string]>): Buffer => {
    const s = (): string => pick(SPACES)
    return Buffer.from(`${s()}{${fields.map(([k, v]) => `${s()}${JSON.stringify(k)}${s()}:${s()}${v}${s()}`).join(',')}}${s()}`)
  }
  const v2 = (outer: string[], nested: string[], pad: number): Buffer => {
    const payload = {
      notificationType: pick(['DID_RENEW', 'SUBSCRIBED', 'TEST', 'REFUND']),
      notificationUUID: bytes(16).toString('hex'),
      data: {
        appAppleId: int(1e10),
        bundleId: `com.example.${text(5)}`,
        environment: pick(['Sandbox', 'Production']),
        signedTransactionInfo: jws(nested, { transactionId: String(int(1e15)), note: text(int(30)), extra: value(0) }),
        signedRenewalInfo: jws(r() < 0.5 ? nested : outer, { autoRenewStatus: int(2), note: text(int(30)) }),
        ...(pad > 0 ? { pad: long(pad) } : {})
      },
      version: '2.0',
      signedDate: int(2e12)
    }
    const fields: Array<[string, string]> = [['signedPayload', `"${jws(outer, payload)}"`]]
    if (r() < 0.2) fields.push([text(4), JSON.stringify(value(0))])
    return wrap(r() < 0.5 ? fields : fields.reverse())
  }
  const kinds = {
    'V2, one chain': () => { const c = x5c(); return v2(c, c, int(2000)) },
    'V2, two chains': () => v2(x5c(), fakeX5c(), int(2000)),
    'V2 past the 32 KB window': () => { const c = x5c(); return v2(c, c, 33_000 + int(20_000)) },
    V1: () => Buffer.from(JSON.stringify({ notification_type: 'DID_RENEW', password: text(20), unified_receipt: { latest_receipt: bytes(int(3000)).toString('base64'), info: value(0) } }, null, pick([0, 1, 2, '\t']))),
    'random JSON': () => wrap(Array.from({ length: int(6) }, () => [text(1 + int(8)), JSON.stringify(value(0))])),
    'garbage bytes': () => bytes(int(3000)),
    'cut V2': () => { const body = v2(x5c(), x5c(), 0); return body.subarray(0, int(body.length)) },
    'V2 with a bad header': () => wrap([['signedPayload', `"${b64(pick(['{"alg":"none"}', '{"x5c":"x"}', text(20)]))}.${b64(JSON.stringify(value(0)))}.${signature()}"`]])
  }
  const names = Object.keys(kinds) as Array<keyof typeof kinds>
  return { kind: () => pick(names), make: (name: keyof typeof kinds) => kinds[name]() }
}
