// Malformed notification bodies from a seeded PRNG, so a failure reproduces
// from its seed and index alone. The 'malformed' family must all be refused
// under VERIFY_SIGNATURES=enforce with APPLE_SHARED_SECRET set (see the fuzz
// tests): mutations stay inside the JWS (or break the JSON around it), never
// add a field beside a genuine signedPayload, and V1 bodies never carry the
// secret. The 'structural' family (structural.ts) also makes bodies signed by
// the trusted chain, marked `authentic`: those may be accepted.
import { makeChain, makeRoot, notificationPayload, replacePart, signJws, signNotification, type Chain } from '../helpers/apple-chain.ts'
import { structuralKinds, type Fuzzed } from './structural.ts'

export { BODY_LIMIT, SHARED_SECRET, type Fuzzed } from './structural.ts'

export const DEFAULT_SEED = 0x5703e0

// mulberry32: tiny, fast, and the same sequence on every machine.
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const B64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const wrap = (jws: string): Buffer => Buffer.from(`{"signedPayload":"${jws}"}`)

export interface Material {
  // Trusted by the server under test (APPLE_ROOT_CERTS points at its root).
  trusted: Chain
  // A well-formed chain from a root the server does not trust.
  stranger: Chain
  // A chain whose leaf lacks Apple's marker OID.
  noLeafOid: Chain
  // Genuine signed notifications (never sent as they are).
  genuine: string[]
}

export function makeMaterial (): Material {
  const root = makeRoot()
  const trusted = makeChain({ root })
  const stranger = makeChain({ root: makeRoot('/C=US/O=someone else/CN=Other Root') })
  const noLeafOid = makeChain({ root, leaf: { oids: [] } })
  const genuine = Array.from({ length: 8 }, () => signNotification(trusted, notificationPayload({ environment: 'Production' })))
  return { trusted, stranger, noLeafOid, genuine }
}

export type Family = 'malformed' | 'structural'

// `big`: the share of structural fragments sized to fill the body limit.
export function generator (seed: number, m: Material, families: readonly Family[] = ['malformed'], big = 0.25): (i: number) => Fuzzed {
  const rnd = prng(seed)
  const int = (n: number): number => Math.floor(rnd() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const str = (n: number, alphabet = B64_CHARS): string => { let s = ''; for (let i = 0; i < n; i++) s += alphabet[int(alphabet.length)]; return s }
  const keys = ['signedPayload', 'notificationType', 'data', 'x5c', 'alg', 'password', 'environment', 'bid', 'unified_receipt', 'a', '']

  const value = (depth: number): unknown => {
    const r = int(depth > 4 ? 5 : 8)
    if (r === 0) return null
    if (r === 1) return rnd() < 0.5
    if (r === 2) return pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.14])
    if (r === 3) return str(int(40), B64_CHARS + '.\\"\u0000\u2028é')
    if (r === 4) return pick(['', 'ES256', 'none', 'Production', 'TEST', '...', 'MIIB'])
    if (r <= 5) return Array.from({ length: int(5) }, () => value(depth + 1))
    const o: Record<string, unknown> = {}
    for (let i = int(5); i > 0; i--) o[pick(keys)] = value(depth + 1)
    return o
  }

  const mutateJws = (jws: string): string => {
    const parts = jws.split('.')
    const r = int(9)
    if (r === 0) { // flip a character of the header or payload: the signing input changes
      const p = int(2)
      const s = parts[p]!
      const at = int(s.length)
      let c = pick([...B64_CHARS])
      while (c === s[at]) c = pick([...B64_CHARS])
      parts[p] = s.slice(0, at) + c + s.slice(at + 1)
      return parts.join('.')
    }
    if (r === 1) return jws.slice(0, int(jws.length)) // truncated
    if (r === 2) { const at = int(jws.length); return jws.slice(0, at) + pick(['=', '+', '/', '%', ' ', '\\\\', '..', '\\u0000']) + jws.slice(at) } // not base64url
    if (r === 3) return parts.slice(0, 1 + int(2)).join('.') // parts missing
    if (r === 4) return [...parts, str(int(20))].join('.') // a part too many
    if (r === 5) return replacePart(jws, 2, str(86)) // signature of the right length, wrong
    if (r === 6) return replacePart(jws, 2, '') // empty signature
    if (r === 7) return replacePart(jws, 1, b64({ ...notificationPayload({ environment: 'Production' }), notificationType: 'REFUND' })) // tampered payload, old signature
    return replacePart(jws, 0, b64({ alg: 'ES256', x5c: m.trusted.x5c, kid: str(8) })) // tampered header, old signature
  }

  const craftedHeader = (): string => {
    const x5cs: unknown[] = [
      [], [m.trusted.x5c[0]], m.trusted.x5c.slice(0, 2), [...m.trusted.x5c, m.trusted.x5c[2]], // wrong lengths
      [str(200), str(300), str(400)], // garbage certificates
      ['MII' + str(1000), m.trusted.x5c[1], m.trusted.x5c[2]], // garbage leaf, genuine rest
      [m.trusted.x5c[0], m.stranger.x5c[1], m.trusted.x5c[2]], // mixed chains
      'not-an-array', 42, null, [1, 2, 3], [{}, {}, {}],
      m.stranger.x5c, m.noLeafOid.x5c
    ]
    return b64({ alg: pick(['ES256', 'ES256', 'none', 'HS256', 'RS256', 'ES384', '', 42, null]), ...(rnd() < 0.9 ? { x5c: pick(x5cs) } : {}) })
  }

  const malformed: Array<[string, () => Buffer]> = [
    ['random bytes', () => Buffer.from(Array.from({ length: int(2000) }, () => int(256)))],
    ['random JSON', () => Buffer.from(JSON.stringify(value(0)) ?? 'null')],
    ['deep nesting', () => { const d = 1 + int(60_000); const o = rnd() < 0.5; return Buffer.from((o ? '{"a":' : '[').repeat(d) + '1' + (o ? '}' : ']').repeat(rnd() < 0.8 ? d : int(d))) }],
    ['huge string', () => Buffer.from(JSON.stringify({ [pick(['signedPayload', 'notificationType', 'x'])]: str(100_000 + int(1_200_000), 'abc.') }))],
    ['broken base64', () => wrap(`${str(int(300), B64_CHARS + '=+/!*')}.${str(int(3000), B64_CHARS + '=+/')}.${str(int(90), B64_CHARS + '=')}`)],
    ['mutated JWS', () => wrap(mutateJws(pick(m.genuine)))],
    ['mutated JSON', () => { const b = Buffer.from(wrap(pick(m.genuine))); const cut = int(b.length); return rnd() < 0.5 ? b.subarray(0, cut) : Buffer.concat([b.subarray(0, cut), Buffer.from(pick(['"', '}', '{', ',', '\\', '\u0000', ']'])), b.subarray(cut)]) }],
    ['crafted header', () => wrap(`${craftedHeader()}.${b64(notificationPayload({ environment: 'Production' }))}.${str(86)}`)],
    ['alg none', () => wrap(signJws({ header: { alg: 'none', x5c: m.trusted.x5c }, payload: notificationPayload({ environment: 'Production' }) }))],
    ['HS256 with the certificate as key', () => wrap(signJws({ header: { alg: 'HS256', x5c: m.trusted.x5c }, payload: notificationPayload({ environment: 'Production' }), key: m.trusted.leaf.pem }))],
    ['untrusted root', () => wrap(signNotification(m.stranger, notificationPayload({ environment: 'Production' })))],
    ['leaf without OID', () => wrap(signNotification(m.noLeafOid, notificationPayload({ environment: 'Production' })))],
    ['Xcode environment', () => wrap(signNotification(m.trusted, notificationPayload({ environment: pick(['Xcode', 'LocalTesting']) })))],
    ['payload not an object', () => wrap(signNotification(m.trusted, b64(pick([[value(3)], str(int(50)), int(1000), null, true]))))],
    ['V1 without the secret', () => Buffer.from(JSON.stringify({ notification_type: pick(['DID_RENEW', '', 'X']), environment: pick(['PROD', 'Sandbox', 42]), bid: 'com.example', ...(rnd() < 0.5 ? { password: str(int(40)) } : {}), unified_receipt: value(2) }))]
  ]
  const kinds: Array<() => Fuzzed> = [
    ...(families.includes('malformed') ? malformed.map(([kind, make]) => () => ({ kind, body: make() })) : []),
    ...(families.includes('structural') ? structuralKinds({ rnd, int, pick }, m, big).map(([, make]) => make) : [])
  ]
  return (i: number) => kinds[i % kinds.length]!()
}

export function seedFromEnv (env: Record<string, string | undefined>): number {
  return env.FUZZ_SEED !== undefined ? Number(env.FUZZ_SEED) : DEFAULT_SEED
}
