// Verifies App Store Server Notifications V2 `signedPayload`s: an ES256 JWS
// whose header carries the x5c chain leaf, intermediate, root.
//
// Apple's @apple/app-store-server-library is the reference for what is
// accepted; test/apple/verify-differential.test.ts runs both on every vector.
// Where this file mirrors a choice of Apple's that looks arbitrary (the 60 s
// skew, checking dates at signedDate, the issuer/subject string comparison,
// ignoring the bytes of the root slot), it does so to reach the same verdict.
//
// Apple's verifier re-parses and re-verifies the whole chain on every call.
// Here a chain is verified once, and only after a payload it carries has fully
// verified is it cached; every later payload still gets its own environment,
// signedDate and ES256 signature checks.
import { readFileSync } from 'node:fs'
import { createHash, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto'
import type { Environment } from '../db/vocabulary.ts'
import { quoteInput } from '../errors.ts'
import { APPLE_ROOT_CA_G3_PEM } from './roots.ts'

export const APPLE_ROOT_CA_G3_SHA256 = '63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179'

export type VerifyReason =
  | 'jws_malformed'
  | 'alg_unsupported'
  | 'payload_malformed'
  | 'environment_untrusted'
  | 'x5c_missing'
  | 'x5c_malformed'
  | 'chain_length'
  | 'chain_untrusted'
  | 'chain_broken'
  | 'intermediate_not_ca'
  | 'intermediate_oid_missing'
  | 'leaf_oid_missing'
  | 'leaf_key_unsupported'
  | 'certificate_not_yet_valid'
  | 'certificate_expired'
  | 'signature_invalid'
  | 'internal_error'

export type VerifyResult =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; reason: VerifyReason; message: string }

export interface VerifierStats {
  cacheEntries: number
  cacheCapacity: number
  hits: number
  misses: number
  evictions: number
  accepted: number
  refused: number
  refusedBy: Partial<Record<VerifyReason, number>>
}

export interface Verifier {
  // decodedPayload: the payload part as the caller already decoded it from
  // this same signedPayload (saves parsing it again); omit it otherwise.
  verify: (signedPayload: string, decodedPayload?: Record<string, unknown>) => VerifyResult
  stats: () => VerifierStats
}

export interface VerifierOptions {
  roots: Buffer[]
  cacheSize?: number
}

// Apple's SignedDataVerifier allows this much clock skew on either side of a
// certificate's validity; the same figure keeps verdicts equal at the edges.
const MAX_SKEW_MS = 60_000

// Apple's chains are ~1.5 KB of base64 per certificate; anything far larger is
// refused before it costs a parse.
const MAX_CERT_B64 = 16_384

const DEFAULT_CACHE_SIZE = 64

const OID_INTERMEDIATE = '1.2.840.113635.100.6.2.1'
const OID_LEAF = '1.2.840.113635.100.6.11.1'

// Xcode and the StoreKit local testing environment sign with their own
// self-signed keys: such payloads prove nothing about the App Store.
const UNTRUSTED_ENVIRONMENTS = new Set<string>(['Xcode', 'LocalTesting'] satisfies Environment[])

const BASE64URL = /^[A-Za-z0-9_-]*$/

type Obj = Record<string, unknown>

interface Root {
  publicKey: KeyObject
  notBefore: number
  notAfter: number
}

interface ChainEntry {
  // Kept as the options object crypto.verify takes, so a hit allocates none.
  leafKey: { key: KeyObject; dsaEncoding: 'ieee-p1363' }
  // The intersection of the leaf's, intermediate's and root's validity.
  notBefore: number
  notAfter: number
}

// Thrown to unwind to verify(), which turns it into a result. Not an Error:
// a refusal needs no stack trace, and capturing one would make every forgery
// in a flood cost more.
class Refusal {
  reason: VerifyReason
  message: string
  constructor (reason: VerifyReason, message: string) {
    this.reason = reason
    this.message = message
  }
}

function refuse (reason: VerifyReason, message: string): never {
  throw new Refusal(reason, message)
}

function isObject (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function encodeOid (dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number)
  const first = arcs[0]
  const second = arcs[1]
  if (first === undefined || second === undefined || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new Error(`not an OID: ${dotted}`)
  }
  const out: number[] = []
  for (const arc of [first * 40 + second, ...arcs.slice(2)]) {
    const groups = [arc & 0x7f]
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) groups.unshift((rest & 0x7f) | 0x80)
    out.push(...groups)
  }
  return Buffer.from(out)
}

const OID_INTERMEDIATE_DER = encodeOid(OID_INTERMEDIATE)
const OID_LEAF_DER = encodeOid(OID_LEAF)

interface Tlv { tag: number; start: number; end: number }

function readTlv (der: Buffer, pos: number, limit: number): Tlv | null {
  if (pos + 2 > limit) return null
  const tag = der[pos]!
  // Certificates use only single-byte tags.
  if ((tag & 0x1f) === 0x1f) return null
  let len = der[pos + 1]!
  let start = pos + 2
  if (len & 0x80) {
    const n = len & 0x7f
    // n === 0 is BER's indefinite length, never valid DER.
    if (n === 0 || n > 4 || start + n > limit) return null
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!
    start += n
  }
  if (len > limit - start) return null
  return { tag, start, end: start + len }
}

// node:crypto's X509Certificate exposes a fixed set of extensions (SAN, key
// usage, basic constraints...) and no way to ask for an arbitrary one, so the
// Apple marker OIDs are found by walking Certificate > TBSCertificate > [3] >
// Extensions > Extension.extnID. A substring search for the OID bytes would
// also match them inside a subject name or another extension's value, which
// anyone minting a certificate controls.
export function hasExtension (der: Buffer, oid: Buffer): boolean {
  const cert = readTlv(der, 0, der.length)
  if (cert === null || cert.tag !== 0x30) return false
  const tbs = readTlv(der, cert.start, cert.end)
  if (tbs === null || tbs.tag !== 0x30) return false
  for (let pos = tbs.start; pos < tbs.end;) {
    const field = readTlv(der, pos, tbs.end)
    if (field === null) return false
    if (field.tag === 0xa3) {
      const list = readTlv(der, field.start, field.end)
      if (list === null || list.tag !== 0x30) return false
      for (let p = list.start; p < list.end;) {
        const ext = readTlv(der, p, list.end)
        if (ext === null || ext.tag !== 0x30) return false
        const id = readTlv(der, ext.start, ext.end)
        if (id === null || id.tag !== 0x06) return false
        if (id.end - id.start === oid.length && der.compare(oid, 0, oid.length, id.start, id.end) === 0) return true
        p = ext.end
      }
      return false
    }
    pos = field.end
  }
  return false
}

function certificatesFromFile (path: string, bytes: Buffer): Buffer[] {
  const text = bytes.toString('latin1')
  if (!text.includes('-----BEGIN')) return [bytes]
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)]
  if (blocks.length === 0) throw new Error(`root certificate file ${path} is PEM but holds no CERTIFICATE block`)
  return blocks.map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
}

// PEM (one or more CERTIFICATE blocks) or DER files -> DER buffers.
export function loadRootCertificates (paths: string[]): Buffer[] {
  const out: Buffer[] = []
  for (const path of paths) {
    let bytes: Buffer
    try {
      bytes = readFileSync(path)
    } catch (err) {
      throw new Error(`cannot read root certificate file ${path}: ${(err as Error).message}`)
    }
    for (const der of certificatesFromFile(path, bytes)) {
      try {
        new X509Certificate(der)
      } catch (err) {
        throw new Error(`root certificate file ${path} is not an X.509 certificate (PEM or DER): ${(err as Error).message}`)
      }
      out.push(der)
    }
  }
  return out
}

// Embedded in roots.ts (not read from a file) so it travels inside every
// build, the single binary included; its fingerprint is checked at load.
export function defaultRootCertificates (): Buffer[] {
  const der = new X509Certificate(APPLE_ROOT_CA_G3_PEM).raw
  const fingerprint = createHash('sha256').update(der).digest('hex')
  if (fingerprint !== APPLE_ROOT_CA_G3_SHA256) {
    throw new Error(`the bundled Apple Root CA - G3 has SHA-256 ${fingerprint}, expected ${APPLE_ROOT_CA_G3_SHA256}`)
  }
  return [der]
}

// Apple compares X509Certificate.validFrom/validTo parsed with Date.
function validity (cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) }
}

function checkWindow (at: number, notBefore: number, notAfter: number): void {
  if (!(notBefore <= at + MAX_SKEW_MS)) {
    refuse('certificate_not_yet_valid', `the certificate chain is not yet valid at ${new Date(at).toISOString()}`)
  }
  if (!(notAfter >= at - MAX_SKEW_MS)) {
    refuse('certificate_expired', `the certificate chain had expired at ${new Date(at).toISOString()}`)
  }
}

function decodeJsonPart (part: string): unknown {
  if (!BASE64URL.test(part)) throw new Error('not base64url')
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
}

// Each payload kind names its environment in a different place; the
// externalPurchaseToken kind has none (it is never Xcode-signed).
function claimedEnvironments (payload: Obj): unknown[] {
  const out: unknown[] = [payload.environment]
  for (const key of ['data', 'summary', 'appData']) {
    const section = payload[key]
    if (isObject(section)) out.push(section.environment)
  }
  return out
}

interface Checked { payload: Obj; at: number }

// The checks every payload gets, cached chain or not. `decoded` is the same
// part already decoded by the caller (the ingest decodes it to index it), so
// the hot path parses the ~8 KB payload once, not twice.
function checkPayload (payloadB64: string, decoded?: Obj): Checked {
  let payload: unknown = decoded
  if (payload === undefined) {
    try {
      payload = decodeJsonPart(payloadB64)
    } catch {
      refuse('payload_malformed', 'the JWS payload is not base64url-encoded JSON')
    }
  }
  if (!isObject(payload)) refuse('payload_malformed', 'the JWS payload is not a JSON object')
  for (const env of claimedEnvironments(payload)) {
    if (typeof env === 'string' && UNTRUSTED_ENVIRONMENTS.has(env)) {
      refuse('environment_untrusted', `the payload claims the ${env} environment, which is signed locally by Xcode, not by the App Store; it is never trusted`)
    }
  }
  const signedDate = payload.signedDate
  let at: number
  if (signedDate === undefined) {
    at = Date.now()
  } else if (typeof signedDate === 'number' && !Number.isNaN(new Date(signedDate).getTime())) {
    at = signedDate
  } else {
    refuse('payload_malformed', 'the payload\'s signedDate is not a valid time in milliseconds')
  }
  return { payload, at }
}

function parseCertificate (b64: unknown, which: string): X509Certificate {
  if (typeof b64 !== 'string' || b64.length > MAX_CERT_B64) refuse('x5c_malformed', `the ${which} certificate in x5c is not a base64 string of sensible size`)
  try {
    return new X509Certificate(Buffer.from(b64, 'base64'))
  } catch {
    refuse('x5c_malformed', `the ${which} certificate in x5c is not a DER X.509 certificate`)
  }
}

export function createVerifier (opts: VerifierOptions): Verifier {
  const capacity = opts.cacheSize ?? DEFAULT_CACHE_SIZE
  if (!Number.isSafeInteger(capacity) || capacity < 0) throw new Error(`cacheSize must be a non-negative integer, got ${capacity}`)
  if (!Array.isArray(opts.roots) || opts.roots.length === 0) throw new Error('at least one trusted root certificate is required')
  // Roots are looked up by subject name, the intermediate's issuer; Apple
  // requires the same string equality before it trusts a signature.
  const rootsBySubject = new Map<string, Root[]>()
  for (const [i, der] of opts.roots.entries()) {
    let cert: X509Certificate
    try {
      cert = new X509Certificate(der)
    } catch (err) {
      throw new Error(`trusted root #${i} is not a DER X.509 certificate: ${(err as Error).message}`)
    }
    const list = rootsBySubject.get(cert.subject) ?? []
    list.push({ publicKey: cert.publicKey, ...validity(cert) })
    rootsBySubject.set(cert.subject, list)
  }

  // Keyed by the JWS protected header exactly as received (base64url). It
  // embeds the exact x5c strings, so equal keys mean byte-identical chains,
  // and also the alg, so a hit needs neither decoding nor parsing the ~3.5 KB
  // header. Map order is recency order: a hit moves its entry to the end.
  const cache = new Map<string, ChainEntry>()
  // Apple signs with one chain at a time, so nearly every hit is on the entry
  // last used. Comparing against it is a memcmp; Map.get would first hash the
  // whole header, ~10% of a verification.
  let last: { header: string; entry: ChainEntry } | null = null
  const counters = { hits: 0, misses: 0, evictions: 0, accepted: 0, refused: 0 }
  const refusedBy: Partial<Record<VerifyReason, number>> = {}

  function checkSignature (token: string, end: number, signatureB64: string, leafKey: ChainEntry['leafKey']): void {
    const sig = Buffer.from(signatureB64, 'base64url')
    // The header and payload parts have passed the base64url check by now, so
    // they are ASCII and latin1 yields the same bytes as UTF-8, ~4x faster.
    if (sig.length !== 64 || !cryptoVerify('sha256', Buffer.from(token.slice(0, end), 'latin1'), leafKey, sig)) {
      refuse('signature_invalid', 'the ES256 signature does not verify with the leaf certificate\'s key')
    }
  }

  // A cache miss: the chain is new. The leaf's signature over the payload is
  // checked before the chain's own signatures (two P-384 verifications for
  // Apple's chain, ~15x the cost of one ES256 check), so a genuine chain
  // replayed with a forged payload costs a leaf parse and one ES256 check,
  // whatever header bytes it is wrapped in.
  function verifyNewChain (header: Obj, at: number, token: string, end: number, signatureB64: string): ChainEntry {
    const x5c = header.x5c
    if (x5c === undefined || x5c === null) refuse('x5c_missing', 'the JWS header has no x5c certificate chain')
    if (!Array.isArray(x5c)) refuse('x5c_malformed', 'the JWS header\'s x5c is not an array')
    if (x5c.length !== 3) refuse('chain_length', `the x5c chain has ${x5c.length} certificates; exactly 3 (leaf, intermediate, root) are required`)
    if (typeof x5c[2] !== 'string') refuse('x5c_malformed', 'the root certificate in x5c is not a base64 string')
    // The root slot is not read: trust comes from a configured root having
    // signed the intermediate, as in Apple's library. (Its own test
    // notification carries a different certificate for its root's key there.)
    const leaf = parseCertificate(x5c[0], 'leaf')
    const leafKey = leaf.publicKey
    if (leafKey.asymmetricKeyType !== 'ec' || leafKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      refuse('leaf_key_unsupported', 'the leaf certificate\'s key is not a P-256 key, so it cannot sign ES256')
    }
    const entryKey = { key: leafKey, dsaEncoding: 'ieee-p1363' } as const
    checkSignature(token, end, signatureB64, entryKey)

    const intermediate = parseCertificate(x5c[1], 'intermediate')
    // Names, flags, extensions and dates before the chain's signatures.
    const candidates = rootsBySubject.get(intermediate.issuer)
    if (candidates === undefined) refuse('chain_untrusted', 'the intermediate certificate was not issued by a trusted root')
    if (leaf.issuer !== intermediate.subject) refuse('chain_broken', 'the leaf certificate was not issued by the intermediate')
    if (!intermediate.ca) refuse('intermediate_not_ca', 'the intermediate certificate is not a CA')
    if (!hasExtension(intermediate.raw, OID_INTERMEDIATE_DER)) {
      refuse('intermediate_oid_missing', `the intermediate certificate lacks Apple's marker extension ${OID_INTERMEDIATE}`)
    }
    if (!hasExtension(leaf.raw, OID_LEAF_DER)) refuse('leaf_oid_missing', `the leaf certificate lacks Apple's marker extension ${OID_LEAF}`)
    const l = validity(leaf)
    const m = validity(intermediate)
    let notBefore = Math.max(l.notBefore, m.notBefore)
    let notAfter = Math.min(l.notAfter, m.notAfter)
    checkWindow(at, notBefore, notAfter)

    const root = candidates.find((r) => intermediate.verify(r.publicKey))
    if (root === undefined) refuse('chain_untrusted', 'the intermediate certificate\'s signature does not verify under any trusted root')
    if (!leaf.verify(intermediate.publicKey)) refuse('chain_broken', 'the leaf certificate\'s signature does not verify under the intermediate')
    notBefore = Math.max(notBefore, root.notBefore)
    notAfter = Math.min(notAfter, root.notAfter)
    checkWindow(at, notBefore, notAfter)
    return { leafKey: entryKey, notBefore, notAfter }
  }

  function run (token: unknown, decoded?: Obj): Obj {
    if (typeof token !== 'string') refuse('jws_malformed', 'signedPayload is not a string')
    const first = token.indexOf('.')
    const second = first < 0 ? -1 : token.indexOf('.', first + 1)
    if (first <= 0 || second < 0 || token.indexOf('.', second + 1) !== -1) {
      refuse('jws_malformed', 'signedPayload is not a compact JWS (three base64url parts separated by dots)')
    }
    const headerB64 = token.slice(0, first)
    const payloadB64 = token.slice(first + 1, second)
    const signatureB64 = token.slice(second + 1)
    // Buffer.from(s, 'base64url') skips characters outside the alphabet;
    // Apple's library refuses them, and so does this.
    if (!BASE64URL.test(signatureB64)) refuse('jws_malformed', 'the JWS signature is not base64url')

    let cached: ChainEntry | undefined
    if (last !== null && last.header === headerB64) {
      cached = last.entry
    } else {
      cached = cache.get(headerB64)
      if (cached !== undefined) {
        cache.delete(headerB64)
        cache.set(headerB64, cached)
        last = { header: headerB64, entry: cached }
      }
    }
    if (cached !== undefined) {
      counters.hits++
      const { payload, at } = checkPayload(payloadB64, decoded)
      checkWindow(at, cached.notBefore, cached.notAfter)
      checkSignature(token, second, signatureB64, cached.leafKey)
      return payload
    }

    counters.misses++
    let header: unknown
    try {
      header = decodeJsonPart(headerB64)
    } catch {
      refuse('jws_malformed', 'the JWS header is not base64url-encoded JSON')
    }
    if (!isObject(header)) refuse('jws_malformed', 'the JWS header is not a JSON object')
    // Only ES256: `none`, and HS256 keyed with the public certificate, are
    // the classic JWS forgeries.
    if (header.alg !== 'ES256') refuse('alg_unsupported', `the JWS alg is ${quoteInput(header.alg)}; only ES256 is accepted`)
    const { payload, at } = checkPayload(payloadB64, decoded)
    const entry = verifyNewChain(header, at, token, second, signatureB64)
    // Only a chain that carried a fully verified payload is cached, so what
    // evicts a good entry must itself be signed by a trusted chain: garbage
    // chains and forged payloads, however many, never enter.
    if (capacity > 0) {
      cache.set(headerB64, entry)
      last = { header: headerB64, entry }
      if (cache.size > capacity) {
        cache.delete(cache.keys().next().value!)
        counters.evictions++
      }
    }
    return payload
  }

  return {
    verify (signedPayload: string, decodedPayload?: Obj): VerifyResult {
      try {
        const payload = run(signedPayload, decodedPayload)
        counters.accepted++
        return { ok: true, payload }
      } catch (err) {
        counters.refused++
        const reason: VerifyReason = err instanceof Refusal ? err.reason : 'internal_error'
        refusedBy[reason] = (refusedBy[reason] ?? 0) + 1
        const message = err instanceof Refusal ? err.message : `verification failed unexpectedly: ${quoteInput(String((err as Error)?.message ?? err))}`
        return { ok: false, reason, message }
      }
    },
    stats (): VerifierStats {
      return { cacheEntries: cache.size, cacheCapacity: capacity, ...counters, refusedBy: { ...refusedBy } }
    }
  }
}
