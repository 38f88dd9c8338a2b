// The body codec (src/outbox/body-codec.ts) must give back every body byte for
// byte: what a target receives is what Apple sent. Checked on every fixture,
// on Apple's real notification and library vectors, on 10,000 seeded
// generated bodies of every shape the ingest can meet, and on the fuzz
// suite's hostile ones.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { deflateRawSync, deflateSync, inflateSync } from 'node:zlib'
import t from 'tap'
import { MAX_BODY_LIMIT_BYTES } from '../../src/config.ts'
import { BODY_ENCODINGS } from '../../src/db/vocabulary.ts'
import {
  BodyDecodeError, chainOf, decodeBody, DIGEST_BYTES, piecesOf, encodeBody, MAX_CHAIN_BYTES, type EncodedBody
} from '../../src/outbox/body-codec.ts'
import { generator as fuzzer, makeMaterial } from '../fuzz/generate.ts'
import { generator } from '../helpers/generated-bodies.ts'
import { makeChain, signJws, type Chain } from '../helpers/apple-chain.ts'

const FIXTURES = join(import.meta.dirname, '../fixtures')
// The shared Apple data next to the checkout, when there is one (the
// fixtures hold a copy of it, so nothing is lost where it is absent).
const SHARED = join(import.meta.dirname, '../../../shared/apple')
const REAL = readFileSync(join(FIXTURES, 'apple/real/production-TEST-2024-10-17.json'))
const VECTORS = join(FIXTURES, 'apple/library-vectors/mock_signed_data')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })
}

const b64 = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

// Stores and reads back as the storage layer will: the chain from the body,
// its pieces from the chain.
function roundTrip (body: Buffer): { encoded: EncodedBody; decoded: Buffer; chain: Buffer | null } {
  const chain = chainOf(body)
  const pieces = chain === null ? null : piecesOf(chain)
  const encoded = encodeBody(body, pieces)
  return { encoded, decoded: decodeBody(encoded.encoding, encoded.data, pieces), chain }
}

t.test('every fixture and Apple vector round-trips byte for byte, never bigger than it came', async t => {
  const paths = [...files(FIXTURES), ...(existsSync(SHARED) ? files(SHARED) : [])]
  if (!existsSync(SHARED)) t.comment(`${SHARED} absent: the fixtures' copy of it is tested`)
  for (const path of paths) {
    const bytes = readFileSync(path)
    // A mock_signed_data file is a bare JWS: also as the body Apple would POST.
    const bodies = path.includes('mock_signed_data') ? [bytes, Buffer.from(`{"signedPayload":"${bytes.toString('latin1').trim()}"}`)] : [bytes]
    for (const body of bodies) {
      const { encoded, decoded } = roundTrip(body)
      t.ok(decoded.equals(body), `${path} (${encoded.encoding})`)
      t.ok(encoded.data.length <= body.length, `${path} not bigger`)
    }
  }
})

t.test('the chain of a V2 body is its JWS header as sent; anything else has none', async t => {
  const header = JSON.parse(REAL.toString()).signedPayload.split('.')[0] as string
  t.equal(chainOf(REAL)?.toString('latin1'), header)
  t.equal(encodeBody(REAL, piecesOf(chainOf(REAL)!)).encoding, 'zlib-chain')
  t.equal(chainOf(readFileSync(join(FIXTURES, 'apple/v1/did-renew-production.json'))), null, 'V1')
  t.equal(chainOf(Buffer.from(`{"signedPayload":"${readFileSync(join(VECTORS, 'missingX5CHeaderClaim'), 'latin1').trim()}"}`)), null, 'no x5c')
  const hostile = [
    '', 'null', '"x"', '[]', '{}', '{"signedPayload":1}', '{"signedPayload":""}', '{"signedPayload":"."}',
    '{"signedPayload":"!!!.a.b"}', `{"signedPayload":"${b64('{"x5c":"MIIB"}')}.a.b"}`, `{"signedPayload":"${b64('{"x5c":[]}')}.a.b"}`,
    `{"signedPayload":"${b64('{"x5c":[1]}')}.a.b"}`, `{"signedPayload":"${b64('not json')}.a.b"}`, `{"signedPayload":"${b64('null')}.a.b"}`,
    `{"signedPayload":"${b64(JSON.stringify({ x5c: ['A'.repeat(MAX_CHAIN_BYTES)] }))}.a.b"}`,
    '['.repeat(1_000_000), '{"signedPayload":"' + '\ud800', '\xff\xfe\x00'
  ]
  for (const body of hostile) t.equal(chainOf(Buffer.from(body, 'latin1')), null, `no chain in ${JSON.stringify(body.slice(0, 40))}`)
  t.ok(chainOf(Buffer.from(`{"signedPayload":"${b64(JSON.stringify({ x5c: ['MIIB'] }))}"}`)), 'a header alone still names its chain')
  const empty = encodeBody(Buffer.alloc(0), null)
  t.same([empty.encoding, empty.data.length, decodeBody(empty.encoding, empty.data, null).length], ['raw', 0, 0], 'an empty body stays raw')
})

t.test('decoding with the wrong chain, or none, or a corrupt skeleton, throws instead of returning other bytes', async t => {
  const chain = piecesOf(chainOf(REAL)!)
  const other = piecesOf(chainOf(Buffer.from(`{"signedPayload":"${readFileSync(join(VECTORS, 'testNotification'), 'latin1').trim()}"}`))!)
  const { encoding, data } = encodeBody(REAL, chain)
  t.equal(encoding, 'zlib-chain')
  t.ok(data.subarray(0, DIGEST_BYTES).equals(chain.digest), 'the stream starts with its chain digest')
  t.throws(() => decodeBody(encoding, data, other), BodyDecodeError, 'another chain')
  t.throws(() => decodeBody(encoding, data, null), BodyDecodeError, 'no chain')
  t.throws(() => decodeBody(encoding, data.subarray(0, 4), chain), BodyDecodeError, 'shorter than a digest')
  // Why the digest: the references name pieces by number; another chain's
  // pieces under the same numbers give other bytes, silently.
  const lookalike = { digest: chain.digest, pieces: chain.pieces.map((p) => Buffer.from(p.map((b) => b ^ 1))) }
  t.notOk(decodeBody(encoding, data, lookalike).equals(REAL), 'without the digest check, other pieces give wrong bytes silently')
  t.throws(() => decodeBody(encoding, data, { ...lookalike, digest: piecesOf(Buffer.from(lookalike.pieces[0]!)).digest }), BodyDecodeError, 'the digest catches it')
  // A skeleton that names a piece the chain does not have, or is cut short.
  const skeleton = (bytes: number[]): Buffer => Buffer.concat([chain.digest, deflateSync(Buffer.from(bytes))])
  t.throws(() => decodeBody(encoding, skeleton([1, 0, 9]), chain), /names no piece/, 'piece 9')
  t.throws(() => decodeBody(encoding, skeleton([1, 50, 0]), chain), /cut short/, 'a gap past the end')
  t.throws(() => decodeBody(encoding, skeleton([3, 0, 0]), chain), /cut short|names no piece/, 'fewer references than counted')
  t.throws(() => decodeBody(encoding, skeleton([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), chain), /cut short/, 'a runaway varint')
  t.throws(() => decodeBody(encoding, skeleton([1, 0, 0]), chain, 100), /larger than 100 bytes/, 'past the cap')
  t.ok(decodeBody(encoding, skeleton([0, 0x41, 0x42]), chain).equals(Buffer.from('AB')), 'no reference: the literals alone')
  // A plain deflate stream that is cut or corrupt fails too.
  const deflated = encodeBody(REAL, null)
  t.equal(deflated.encoding, 'zlib')
  for (const e of ['zlib', 'deflate'] as const) {
    t.throws(() => decodeBody(e, deflated.data.subarray(0, deflated.data.length >> 1), null), BodyDecodeError, `${e} truncated`)
    t.throws(() => decodeBody(e, Buffer.from([0xff, 0xff, 0xff]), null), BodyDecodeError, `${e} garbage`)
    t.throws(() => decodeBody(e, Buffer.alloc(0), null), BodyDecodeError, `an empty ${e} stream`)
  }
  t.throws(() => decodeBody('bogus' as never, data, chain), BodyDecodeError, 'unknown encoding')
  t.same([...BODY_ENCODINGS], ['raw', 'deflate', 'deflate-chain', 'zlib', 'zlib-chain'])
})

// A row damaged on disk (or by hand) must fail, never give other bytes that
// would then be forwarded as Apple's: zlib's Adler-32 checks the body or the
// skeleton, the digest the chain. Every byte of a stored form, each flipped
// three ways.
t.test('every single-byte corruption of a stored form is an error, never other bytes', async t => {
  const chain = piecesOf(chainOf(REAL)!)
  const v1 = readFileSync(join(FIXTURES, 'apple/v1/did-renew-production.json'))
  for (const [label, body, pieces] of [['zlib-chain', REAL, chain], ['zlib', v1, null]] as const) {
    const { encoding, data } = encodeBody(body, pieces)
    t.equal(encoding, label)
    let other = 0
    let tried = 0
    for (let i = 0; i < data.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const damaged = Buffer.from(data)
        damaged[i]! ^= flip
        tried++
        try {
          if (!decodeBody(encoding, damaged, pieces).equals(body)) other++
        } catch (err) {
          if (!(err instanceof BodyDecodeError)) throw err
        }
      }
    }
    t.equal(other, 0, `${label}: none of ${tried} corruptions of ${data.length} bytes gave other bytes`)
  }
})

// Rows the first version wrote (raw deflate, no check) are still read.
t.test('deflate and deflate-chain rows of the first version read back', async t => {
  const chain = piecesOf(chainOf(REAL)!)
  const { data } = encodeBody(REAL, chain)
  const legacyChain = Buffer.concat([data.subarray(0, DIGEST_BYTES), deflateRawSync(inflateSync(data.subarray(DIGEST_BYTES)))])
  t.ok(decodeBody('deflate-chain', legacyChain, chain).equals(REAL), 'deflate-chain')
  t.ok(decodeBody('deflate', deflateRawSync(REAL), null).equals(REAL), 'deflate')
})

t.test('inflation is capped', async t => {
  const bomb = Buffer.alloc(4 * 1_048_576, 0x20)
  const { encoding, data } = encodeBody(bomb, null)
  t.equal(encoding, 'zlib')
  t.ok(data.length < 32_768, `4 MiB of spaces deflate to ${data.length} B (over 100:1)`)
  t.throws(() => decodeBody(encoding, data, null, 1_048_576), BodyDecodeError, 'past the cap')
  t.ok(decodeBody(encoding, data, null, bomb.length).equals(bomb), 'exactly at the cap')
  // The default: the largest body BODY_LIMIT_BYTES can ever admit.
  const over = deflateSync(Buffer.alloc(MAX_BODY_LIMIT_BYTES + 1))
  t.throws(() => decodeBody('zlib', over, null), BodyDecodeError, 'past BODY_LIMIT_BYTES\' ceiling by default')
})

t.test('10,000 generated bodies round-trip byte for byte', async t => {
  const chains = [makeChain(), makeChain()]
  const counts = new Map<string, { n: number; encodings: Record<string, number>; failures: number[] }>()
  const started = performance.now()
  const N = 10_000
  for (let seed = 1; seed <= N; seed++) {
    const g = generator(seed, chains)
    const kind = g.kind()
    const body = g.make(kind)
    const entry = counts.get(kind) ?? { n: 0, encodings: {}, failures: [] }
    counts.set(kind, entry)
    entry.n++
    let ok = false
    try {
      const { encoded, decoded, chain } = roundTrip(body)
      entry.encodings[encoded.encoding] = (entry.encodings[encoded.encoding] ?? 0) + 1
      // Every well-formed V2 body names its chain.
      ok = decoded.equals(body) && encoded.data.length <= body.length && (!kind.startsWith('V2') || kind === 'V2 with a bad header' || chain !== null)
    } catch (err) {
      t.comment(`seed ${seed} (${kind}) threw: ${(err as Error).message}`)
    }
    if (!ok) entry.failures.push(seed)
  }
  for (const [kind, { n, encodings, failures }] of counts) {
    t.same(failures, [], `${kind}: ${n} bodies, ${JSON.stringify(encodings)}`)
  }
  t.equal([...counts.values()].reduce((a, c) => a + c.n, 0), N)
  t.comment(`${N} bodies in ${Math.round(performance.now() - started)} ms`)
})

t.test('the fuzz suite\'s malformed bodies: chainOf never throws, every body round-trips', async t => {
  const next = fuzzer(0xc0dec, makeMaterial())
  const failures: string[] = []
  for (let i = 0; i < 50; i++) {
    const { kind, body } = next(i)
    try {
      if (!roundTrip(body).decoded.equals(body)) failures.push(`${i} ${kind}`)
    } catch (err) {
      failures.push(`${i} ${kind}: ${(err as Error).message}`)
    }
  }
  t.same(failures, [])
})

t.test('sizes: raw, deflate, deflate-chain', async t => {
  const sizes = (body: Buffer): string => `${body.length} B raw, ${encodeBody(body, null).data.length} B deflate, ${encodeBody(body, piecesOf(chainOf(body)!)).data.length} B deflate-chain (digest included)`
  t.comment(`Apple's real Production TEST notification: ${sizes(REAL)}`)
  // A 12.6 KB V2 body with a nested transaction and renewal, all signed by
  // one generated three-certificate chain, as in the benchmark.
  const chain = makeChain()
  const sign = (payload: Record<string, unknown>): string => signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload, key: chain.leaf.privateKey })
  const body = (pad: number): Buffer => Buffer.from(JSON.stringify({
    signedPayload: sign({
      notificationType: 'DID_RENEW',
      notificationUUID: '3b1c8a2e-6a1f-4c3e-9d5b-2f6e8a7c9d01',
      data: {
        appAppleId: 1234567890,
        bundleId: 'com.example.app',
        environment: 'Production',
        signedTransactionInfo: sign({ transactionId: '2000000222222222', originalTransactionId: '2000000111111111', productId: 'pro.monthly', purchaseDate: 1_700_000_000_000, expiresDate: 1_702_592_000_000, type: 'Auto-Renewable Subscription' }),
        signedRenewalInfo: sign({ originalTransactionId: '2000000111111111', autoRenewProductId: 'pro.monthly', autoRenewStatus: 1 }),
        pad: 'x'.repeat(pad)
      },
      version: '2.0',
      signedDate: 1_700_000_000_000
    })
  }))
  const generated = body(Math.max(0, Math.floor((12_600 - body(0).length) * 3 / 4)))
  t.comment(`generated V2 body with nested transaction and renewal: ${sizes(generated)}`)
  t.ok(encodeBody(generated, piecesOf(chainOf(generated)!)).data.length * 4 < generated.length, 'the chain pays at least 4x')
})
