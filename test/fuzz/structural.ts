// Structural mutations: bodies whose JSON is well-formed (or nearly) but
// whose shape is extreme: depth, key count, huge strings, odd unicode and raw
// bytes, duplicate keys, odd numbers, and mixtures of these inside a body that
// is otherwise a genuine notification. Each extreme is placed in one or more
// spots: the outer body (V1 or V2), the JWS header, the JWS payload (top level
// or data), or inside the nested signedTransactionInfo/signedRenewalInfo.
//
// Bodies are assembled as bytes, not with JSON.stringify: duplicate keys, raw
// invalid UTF-8 and 100,000 levels of nesting cannot come out of a serialiser.
//
// `authentic` says whether a body may legitimately be accepted under enforce:
// its signedPayload was signed by the trusted test chain, and every reading of
// the body (first or last of a duplicated key) is that signed payload. The
// harness refuses to see anything else accepted under enforce.
import { randomUUID, sign } from 'node:crypto'
import { APP_APPLE_ID, BUNDLE_ID, type Chain } from '../helpers/apple-chain.ts'

export const BODY_LIMIT = 1_048_576
export const SHARED_SECRET = 'fuzz-shared-secret-never-generated'

export interface Fuzzed {
  kind: string
  body: Buffer
  authentic?: boolean
  // A body whose readings differ (a duplicated key): a first-wins parser at a
  // target would see something storehook did not verify.
  ambiguous?: boolean
}

export interface StructuralMaterial {
  trusted: Chain
  stranger: Chain
}

interface Rand {
  rnd: () => number
  int: (n: number) => number
  pick: <T>(xs: readonly T[]) => T
}

type Bytes = Buffer | string
const bytes = (...parts: Bytes[]): Buffer => Buffer.concat(parts.map((p) => typeof p === 'string' ? Buffer.from(p, 'utf8') : p))
const q = (s: string): string => JSON.stringify(s)
const b64 = (b: Bytes): string => bytes(b).toString('base64url')

// An object from [key as JSON text, value as JSON text or bytes] pairs; keys may repeat.
type Entries = Array<[string, Bytes]>
const obj = (entries: Entries): Buffer => bytes('{', ...entries.flatMap(([k, v], i) => [i === 0 ? '' : ',', k, ':', v]), '}')

// Replaces a field (the first with that key) or appends it: one value per key
// unless a duplicate is what the mutation wants.
function put (entries: Entries, key: string, value: Bytes): Entries {
  const at = entries.findIndex(([k]) => k === key)
  if (at === -1) return [...entries, [key, value]]
  return entries.map((e, i) => i === at ? [key, value] : e)
}

function signRaw (chain: Chain, header: Buffer, payload: Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${sign('sha256', Buffer.from(input), { key: chain.leaf.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

// Where a fragment goes, and how much base64url it passes through on the way
// (each layer costs 4/3): the budget that keeps a body near the limit.
type Where = 'v1' | 'receipt' | 'outer' | 'header' | 'top' | 'data' | 'tx' | 'renewal' | 'txPart'
const V2_SPOTS: Where[] = ['outer', 'header', 'top', 'data', 'tx', 'renewal', 'txPart']
const V1_SPOTS: Where[] = ['v1', 'receipt']
const LAYERS: Record<Where, number> = { v1: 0, receipt: 0, outer: 0, header: 1, top: 1, data: 1, tx: 2, renewal: 2, txPart: 2 }
// The keys a spot's fragment may replace: the fields storehook reads there, and one it does not.
const KEYS: Record<Where, string[]> = {
  v1: ['notification_type', 'environment', 'bid', 'password', 'app_apple_id', 'unified_receipt', 'latest_receipt_info', 'x'],
  receipt: ['original_transaction_id', 'transaction_id', 'product_id', 'purchase_date_ms', 'app_account_token', 'x'],
  outer: ['signedPayload', 'x'],
  header: ['alg', 'x5c', 'kid', 'x'],
  top: ['notificationType', 'subtype', 'notificationUUID', 'signedDate', 'data', 'summary', 'version', 'x'],
  data: ['bundleId', 'environment', 'appAppleId', 'signedTransactionInfo', 'signedRenewalInfo', 'x'],
  tx: ['originalTransactionId', 'transactionId', 'productId', 'appAccountToken', 'x'],
  renewal: ['originalTransactionId', 'productId', 'autoRenewProductId', 'x'],
  txPart: ['']
}

// `twice`: add the key again rather than replace it (a duplicate key).
interface Spot { where: Where; key: string; value: Buffer; twice?: boolean }

const OVERHEAD = 6000

export function structuralKinds (r: Rand, m: StructuralMaterial, big: number): Array<[string, () => Fuzzed]> {
  const { rnd, int, pick } = r

  // A fraction `big` of the fragments fill the body up to the limit: mostly
  // just under what fits, sometimes just over (a 413 is a refusal too). The
  // others stay under 64 KB, which is still 30,000 levels or 10,000 keys: big
  // bodies cost the server a durable write, a forward and two views each, so
  // the normal suite keeps them few and the fault suite has many.
  // Huge strings are near the limit at least half the time: that is their point.
  const budgetFor = (where: Where, share: number, family: Family): number => {
    const fits = Math.floor((BODY_LIMIT - OVERHEAD) * share * (3 / 4) ** LAYERS[where])
    if (rnd() >= (family === 'huge string' ? Math.max(big, 0.5) : big)) return Math.min(fits, 1 + int(65_536))
    return rnd() < 0.1 ? Math.floor(fits * 1.1) : fits - int(Math.min(fits, 4000))
  }

  // ---- fragments: JSON text (or not quite) of one extreme shape ----

  const depth = (budget: number): Buffer => {
    let d = pick([2, 63, 64, 65, 100, 1000, 10_000, 100_000, 100_000, 1 + int(150_000)])
    const [open, close] = pick([['[', ']'], ['{"a":', '}'], ['[{"a":', '}]'], ['{"":[', ']}']] as const)
    d = Math.max(1, Math.min(d, Math.floor(budget / (open.length + close.length))))
    const leaf = pick(['1', 'null', '"x"', '[]', '{}'])
    // One in ten left unclosed or over-closed: not JSON at all.
    const closing = rnd() < 0.9 ? d : rnd() < 0.5 ? int(d) : d + 1
    return bytes(open.repeat(d), leaf, close.repeat(closing))
  }

  const wide = (budget: number): Buffer => {
    let n = pick([1000, 65_536, 100_000, 100_000, 1 + int(100_000)])
    const shape = pick(['distinct keys', 'one key repeated', 'array'] as const)
    if (shape === 'array') { n = Math.max(1, Math.min(n * 4, Math.floor(budget / 2))); return bytes('[', '0,'.repeat(n - 1), '0]') }
    if (shape === 'one key repeated') { n = Math.max(1, Math.min(n, Math.floor(budget / 6))); return bytes('{', '"a":0,'.repeat(n - 1), '"a":0}') }
    n = Math.max(1, Math.min(n, Math.floor(budget / 10)))
    return bytes('{', Array.from({ length: n }, (_, i) => `"${i.toString(36)}":${i % 10}`).join(','), '}')
  }

  // The inside of a JSON string (without its quotes): escaped and raw
  // surrogates, BOM, NUL, overlong and invalid UTF-8, direction overrides.
  const UNICODE: Buffer[] = [
    '\\ud800', '\\udfff', 'x\\ud83d', '\\udc00\\ud800', '\\ud83d\\udcb3',
    Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xed, 0xbf, 0xbf]), // raw lone surrogates (WTF-8)
    '\\ufeff', Buffer.from([0xef, 0xbb, 0xbf]),
    '\\u0000', Buffer.from([0x00]), // a raw NUL (or any control byte) is not JSON
    Buffer.from([0xc0, 0xaf]), Buffer.from([0xe0, 0x80, 0xaf]), Buffer.from([0xf0, 0x80, 0x80, 0xaf]), Buffer.from([0xc1, 0xbf]), // overlong
    Buffer.from([0xff]), Buffer.from([0xfe]), Buffer.from([0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
    '\u202egpj.exe', '\\u202eevil', '\u200f\u2066x\u2069', '\u2028\u2029', 'e\u0301\u0338\u0321', '<script>\\u003c/script>'
  ].map((u) => bytes(u))
  const unicodeString = (): Buffer => bytes('"', ...Array.from({ length: 1 + int(4) }, () => pick(UNICODE)), '"')
  const unicode = (): Buffer => {
    const s = unicodeString()
    const r = int(4)
    if (r === 0) return bytes('{', unicodeString(), ':', s, '}') // as a key
    if (r === 1) return bytes('[', s, ',', unicodeString(), ']')
    return s
  }

  const hugeString = (budget: number): Buffer => {
    const unit = pick(['x', 'é', '\\u0000', '\\ud800', '\\"', '\u202e'])
    const n = Math.max(0, Math.floor((budget - 2) / Buffer.byteLength(unit)))
    return bytes('"', unit.repeat(n), '"')
  }

  const NUMBERS = ['1e400', '-1e400', '-0', '-0.0', '0e-400', '1' + '0'.repeat(400), '5e-324', '2e-324', '9007199254740993',
    '-9223372036854775809', '1.7976931348623159e308', '1E+2', '0.1e1', '-1', '1.5']
  const number = (budget: number): Buffer => rnd() < 0.1 ? bytes('9'.repeat(Math.min(budget, 100_000))) : bytes(pick(NUMBERS))

  const FAMILIES = { depth, 'key count': wide, 'huge string': hugeString, unicode, numbers: number } as const
  type Family = keyof typeof FAMILIES
  const fragment = (family: Family, budget: number): Buffer => FAMILIES[family](budget)

  // ---- hosts: a genuine-looking notification with fragments at spots ----

  // Three in five signed by the trusted chain: the fragment then reaches past
  // the verifier, into storage and the views.
  const signer = (): Chain | null => { const x = rnd(); return x < 0.6 ? m.trusted : x < 0.85 ? m.stranger : null }
  const jws = (chain: Chain | null, header: Buffer, payload: Buffer): string =>
    chain === null ? `${b64(header)}.${b64(payload)}.${b64(Buffer.alloc(64, int(256)))}` : signRaw(chain, header, payload)

  const spotsAt = (spots: Spot[], where: Where, base: Entries): Entries =>
    spots.filter((s) => s.where === where).reduce<Entries>((e, s) => s.twice === true ? [...e, [s.key, s.value]] : put(e, s.key, s.value), base)

  const nested = (spots: Spot[], which: 'tx' | 'renewal'): string => {
    const part = spots.find((s) => s.where === 'txPart')
    const fields: Entries = which === 'tx'
      ? [[q('originalTransactionId'), q('2000000111111111')], [q('transactionId'), q('2000000222222222')], [q('productId'), q('pro.monthly')]]
      : [[q('originalTransactionId'), q('2000000111111111')], [q('autoRenewProductId'), q('pro.monthly')]]
    const payload = which === 'tx' && part !== undefined ? part.value : obj(spotsAt(spots, which, fields))
    return `${b64('{"alg":"ES256"}')}.${b64(payload)}.${b64(Buffer.alloc(64, 7))}`
  }

  const v2 = (spots: Spot[], chain = signer()): { body: Buffer; authentic: boolean } => {
    const data = spotsAt(spots, 'data', [
      [q('appAppleId'), String(APP_APPLE_ID)], [q('bundleId'), q(BUNDLE_ID)], [q('environment'), q('Production')],
      [q('signedTransactionInfo'), q(nested(spots, 'tx'))], [q('signedRenewalInfo'), q(nested(spots, 'renewal'))]
    ])
    const payload = obj(spotsAt(spots, 'top', [
      [q('notificationType'), q('DID_RENEW')], [q('notificationUUID'), q(randomUUID())], [q('data'), obj(data)],
      [q('version'), q('2.0')], [q('signedDate'), String(Date.now())]
    ]))
    const header = obj(spotsAt(spots, 'header', [[q('alg'), q('ES256')], [q('x5c'), JSON.stringify(chain?.x5c ?? m.trusted.x5c)]]))
    const outer = obj(spotsAt(spots, 'outer', [[q('signedPayload'), q(jws(chain, header, payload))]]))
    // A fragment beside signedPayload is not signed, but nothing reads it as
    // the notification: storehook verifies and forwards the signedPayload with
    // its unsigned neighbours, by design (Apple sends none).
    return { body: outer, authentic: chain === m.trusted }
  }

  // V1 never carries the shared secret (see generate.ts): refused under enforce.
  const v1 = (spots: Spot[]): { body: Buffer; authentic: boolean } => {
    const entry = obj(spotsAt(spots, 'receipt', [[q('original_transaction_id'), q('1000000111111111')], [q('transaction_id'), q('1000000222222222')], [q('product_id'), q('pro.monthly')], [q('purchase_date_ms'), q('1700000000000')]]))
    const receipt = obj([[q('status'), '0'], [q('environment'), q('Production')], [q('latest_receipt_info'), bytes('[', entry, ']')]])
    const body = obj(spotsAt(spots, 'v1', [[q('notification_type'), q('DID_RENEW')], [q('environment'), q('PROD')], [q('bid'), q(BUNDLE_ID)], [q('unified_receipt'), receipt]]))
    return { body, authentic: false }
  }

  const spot = (family: Family, where: Where, share = 1): Spot => ({ where, key: q(pick(KEYS[where])), value: fragment(family, budgetFor(where, share, family)) })

  const single = (family: Family) => (): Fuzzed => {
    const isV1 = rnd() < 0.3
    const s = spot(family, pick(isV1 ? V1_SPOTS : V2_SPOTS))
    const { body, authentic } = isV1 ? v1([s]) : v2([s])
    // A BOM before the body: JSON.parse refuses it, a lenient reader would not.
    if (family === 'unicode' && rnd() < 0.15) return { kind: `${family} (BOM before the body)`, body: bytes(Buffer.from([0xef, 0xbb, 0xbf]), body), authentic: false }
    return { kind: `${family} in ${isV1 ? 'V1' : 'V2'} ${s.where}`, body, authentic }
  }

  // Several spots at once, each its own family, sharing the size budget.
  const mixture = (): Fuzzed => {
    const n = 2 + int(3)
    const families = Object.keys(FAMILIES) as Family[]
    const spots = Array.from({ length: n }, () => spot(pick(families), pick(V2_SPOTS), 1 / n))
    return { kind: 'mixture in V2', ...v2(spots) }
  }

  // The same key twice. JSON.parse keeps the last; a first-wins parser at a
  // target would read the first. Authentic only when both readings are the
  // trusted chain's signed payload.
  const duplicates = (): Fuzzed => {
    const signed = (chain: Chain | null = m.trusted, type = 'DID_RENEW'): string => {
      const { body } = v2([{ where: 'top', key: q('notificationType'), value: bytes(q(type)) }], chain)
      return (JSON.parse(body.toString()) as { signedPayload: string }).signedPayload
    }
    const key = pick([q('signedPayload'), '"signed\\u0050ayload"'])
    const v1Fields: Entries = [[q('notification_type'), q('DID_RENEW')], [q('environment'), q('PROD')], [q('bid'), q(BUNDLE_ID)]]
    const cases: Array<() => Fuzzed> = [
      () => ({ kind: 'duplicate signedPayload: forged first, genuine last', body: obj([[key, q(signed(pick([m.stranger, null]), 'REFUND'))], [q('signedPayload'), q(signed())]]), ambiguous: true }),
      () => ({ kind: 'duplicate signedPayload: genuine first, forged last', body: obj([[q('signedPayload'), q(signed())], [key, q(signed(pick([m.stranger, null]), 'REFUND'))]]) }),
      () => ({ kind: 'duplicate signedPayload: not a string first, genuine last', body: obj([[q('signedPayload'), fragment(pick(['depth', 'numbers', 'unicode']), 1000)], [q('signedPayload'), q(signed())]]), ambiguous: true }),
      () => ({ kind: 'duplicate signedPayload: two genuine', body: obj([[q('signedPayload'), q(signed())], [key, q(signed())]]), authentic: true }),
      // Signed by the trusted key: what the key holder signed, odd or not.
      () => ({ kind: 'duplicate notificationType inside a genuine payload', ...v2([{ where: 'top', key: q('notificationType'), value: bytes(q('REFUND')), twice: true }], m.trusted) }),
      () => ({ kind: 'duplicate alg in a genuine header', ...v2([{ where: 'header', key: '"a\\u006cg"', value: bytes(q(pick(['none', 'HS256']))), twice: true }], m.trusted) }),
      () => ({ kind: 'duplicate notification_type (V1)', body: obj([...v1Fields, [q('notification_type'), q('REFUND')]]) }),
      () => ({ kind: 'duplicate password (V1): wrong first, the secret last', body: obj([...v1Fields, [q('password'), q('wrong')], [q('password'), q(SHARED_SECRET)]]), ambiguous: true }),
      () => ({ kind: 'duplicate password (V1): the secret first, wrong last', body: obj([...v1Fields, [q('password'), q(SHARED_SECRET)], [q('password'), q('wrong')]]) }),
      () => ({ kind: 'V1 and V2 at once: genuine signedPayload, notification_type', body: obj([[q('notification_type'), q('REFUND')], [q('password'), q('wrong')], [q('signedPayload'), q(signed())]]), ambiguous: true })
    ]
    return pick(cases)()
  }

  return [
    ['depth', single('depth')],
    ['key count', single('key count')],
    ['huge string', single('huge string')],
    ['unicode', single('unicode')],
    ['numbers', single('numbers')],
    ['duplicate keys', duplicates],
    ['mixture', mixture]
  ]
}
