// Fake App Store certificate chains, and every forgery storehook must refuse,
// for tests. node:crypto makes keys and signatures but cannot write a
// certificate, so the ASN.1 comes from jsrsasign (the DER library Apple's
// @apple/app-store-server-library itself depends on, so the differential test
// brings it anyway). jsrsasign only lays out the TBSCertificate; node:crypto
// signs it.
import { createHmac, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import jsrsasign from 'jsrsasign'
import type { VerifyReason } from '../../src/apple/verify.ts'

const { KJUR } = jsrsasign

export const OID_INTERMEDIATE = '1.2.840.113635.100.6.2.1'
export const OID_LEAF = '1.2.840.113635.100.6.11.1'

// The vectors' signedDate: inside every test chain's default validity
// (2023-01-01 .. 2033-01-01) and before some leaves' expiry.
export const SIGNED_DATE = Date.UTC(2024, 5, 1)
export const BUNDLE_ID = 'com.example'
export const APP_APPLE_ID = 1234

export type Curve = 'P-256' | 'P-384'

export interface Cert {
  der: Buffer
  b64: string
  pem: string
  // jsrsasign's one-line form, e.g. /C=US/O=storehook tests/CN=Leaf
  name: string
  privateKey: KeyObject
  publicKey: KeyObject
}

export interface CertSpec {
  name: string
  // Omitted: self-signed.
  issuer?: Cert
  // Forgeries: claim one issuer name, sign with another key.
  issuerName?: string
  signingKey?: KeyObject
  ca?: boolean
  // Apple's marker extensions (or any OID) to carry, with a NULL value.
  oids?: string[]
  // Any other extension, its value given as DER hex.
  extensions?: Array<{ oid: string; valueHex: string }>
  notBefore?: Date
  notAfter?: Date
  curve?: Curve
}

let serial = 1

// RFC 5280: UTCTime through 2049, GeneralizedTime after.
function asn1Time (d: Date): string {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
  return d.getUTCFullYear() < 2050 ? iso.slice(2) : iso
}

function curveOf (key: KeyObject): Curve {
  return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'
}

export function makeCert (spec: CertSpec): Cert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: spec.curve ?? 'P-256' })
  const signingKey = spec.signingKey ?? spec.issuer?.privateKey ?? privateKey
  const p384 = curveOf(signingKey) === 'P-384'
  const sigalg = p384 ? 'SHA384withECDSA' : 'SHA256withECDSA'
  const ext: Array<{ extname: string; [x: string]: unknown }> = []
  if (spec.ca === true) ext.push({ extname: 'basicConstraints', critical: true, cA: true })
  else ext.push({ extname: 'basicConstraints', critical: true })
  ext.push({ extname: 'keyUsage', critical: true, names: spec.ca === true ? ['keyCertSign', 'cRLSign'] : ['digitalSignature'] })
  // Apple's marker extensions hold an ASN.1 NULL.
  for (const oid of spec.oids ?? []) ext.push({ extname: oid, extn: '0500' })
  for (const { oid, valueHex } of spec.extensions ?? []) ext.push({ extname: oid, extn: valueHex })
  const tbs = new KJUR.asn1.x509.TBSCertificate({
    version: 3,
    serial: { int: serial++ },
    sigalg,
    issuer: { str: spec.issuerName ?? spec.issuer?.name ?? spec.name },
    subject: { str: spec.name },
    notbefore: asn1Time(spec.notBefore ?? new Date(Date.UTC(2023, 0, 1))),
    notafter: asn1Time(spec.notAfter ?? new Date(Date.UTC(2033, 0, 1))),
    sbjpubkey: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    ext
  })
  const tbsDer = Buffer.from(tbs.getEncodedHex(), 'hex')
  const signature = sign(p384 ? 'sha384' : 'sha256', tbsDer, signingKey)
  const cert = new KJUR.asn1.x509.Certificate({ tbsobj: tbs, sigalg, sighex: signature.toString('hex') })
  const der = Buffer.from(cert.getEncodedHex(), 'hex')
  const b64 = der.toString('base64')
  const pem = `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`
  return { der, b64, pem, name: spec.name, privateKey, publicKey }
}

export function makeRoot (name = '/C=US/O=storehook tests/CN=Test Root CA'): Cert {
  return makeCert({ name, ca: true })
}

export interface Chain {
  root: Cert
  intermediate: Cert
  leaf: Cert
  x5c: string[]
}

export interface ChainOptions {
  root?: Cert
  intermediate?: Partial<CertSpec>
  leaf?: Partial<CertSpec>
}

// An Apple-shaped chain: root -> intermediate (CA, OID ...6.2.1) -> leaf
// (OID ...6.11.1, P-256); any field can be overridden to build a forgery.
export function makeChain (opts: ChainOptions = {}): Chain {
  const root = opts.root ?? makeRoot()
  const intermediate = makeCert({
    name: '/C=US/O=storehook tests/CN=Test Intermediate',
    issuer: root,
    ca: true,
    oids: [OID_INTERMEDIATE],
    ...opts.intermediate
  })
  const leaf = makeCert({
    name: '/C=US/O=storehook tests/CN=Test Signing Leaf',
    issuer: intermediate,
    oids: [OID_LEAF],
    ...opts.leaf
  })
  return { root, intermediate, leaf, x5c: [leaf.b64, intermediate.b64, root.b64] }
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

export interface SignOptions {
  header: Record<string, unknown>
  // An object is JSON-encoded; a string is used as the payload part as is.
  payload: Record<string, unknown> | string
  // ES256: the leaf's private key. HS256: the HMAC secret. none: nothing.
  key?: KeyObject | string
}

export function signJws ({ header, payload, key }: SignOptions): string {
  const input = `${b64url(JSON.stringify(header))}.${typeof payload === 'string' ? payload : b64url(JSON.stringify(payload))}`
  if (header.alg === 'none') return `${input}.`
  if (header.alg === 'HS256') return `${input}.${createHmac('sha256', key as string).update(input).digest('base64url')}`
  const sig = sign('sha256', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' })
  return `${input}.${sig.toString('base64url')}`
}

export interface PayloadOptions {
  environment?: string
  bundleId?: string
  appAppleId?: number
  // Default: now. null: no signedDate field at all.
  signedDate?: number | string | null
  // Default: a fresh UUID, so notifications never collide in storage.
  notificationUUID?: string
}

export function notificationPayload (opts: PayloadOptions = {}): Record<string, unknown> {
  const p: Record<string, unknown> = {
    notificationType: 'TEST',
    notificationUUID: opts.notificationUUID ?? randomUUID(),
    data: {
      appAppleId: opts.appAppleId ?? APP_APPLE_ID,
      bundleId: opts.bundleId ?? BUNDLE_ID,
      environment: opts.environment ?? 'Sandbox'
    },
    version: '2.0'
  }
  if (opts.signedDate !== null) p.signedDate = opts.signedDate ?? Date.now()
  return p
}

// Signs a notification the way Apple does: {"alg":"ES256","x5c":[...]}.
export function signNotification (chain: Chain, payload: Record<string, unknown> | string = notificationPayload(), x5c: unknown = chain.x5c): string {
  return signJws({ header: { alg: 'ES256', x5c }, payload, key: chain.leaf.privateKey })
}

// Replaces one part of a compact JWS, keeping the others byte for byte.
export function replacePart (jws: string, index: 0 | 1 | 2, part: string): string {
  const parts = jws.split('.')
  parts[index] = part
  return parts.join('.')
}

export function decodePart (jws: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

export interface AppContext {
  // What Apple's SignedDataVerifier is built for: the app the payload targets.
  environment: 'Sandbox' | 'Production'
  bundleId: string
  appAppleId: number
}

export interface Vector {
  name: string
  jws: string
  expect: { ok: true } | { ok: false; reason: VerifyReason }
  app: AppContext
}

export interface VectorSet {
  // The test root the vectors are trusted under (storehook and Apple alike).
  root: Cert
  chain: Chain
  vectors: Vector[]
}

const SANDBOX: AppContext = { environment: 'Sandbox', bundleId: BUNDLE_ID, appAppleId: APP_APPLE_ID }

// Every genuine shape and every forgery in the issue, each with the reason
// storehook must give. Built fresh (new keys) on every call.
export function buildVectors (): VectorSet {
  const np = (o: PayloadOptions = {}): Record<string, unknown> => notificationPayload({ signedDate: SIGNED_DATE, ...o })
  const chain = makeChain()
  const { root } = chain
  const genuine = signNotification(chain, np())
  const ok = { ok: true } as const
  const no = (reason: VerifyReason): Vector['expect'] => ({ ok: false, reason })
  const v = (name: string, jws: string, expect: Vector['expect'], app: AppContext = SANDBOX): Vector => ({ name, jws, expect, app })

  const stranger = makeChain({ root: makeRoot('/C=US/O=Mallory/CN=Mallory Root CA') })
  // Same subject as the trusted root, different key.
  const impostor = makeChain({ root: makeRoot(root.name) })
  const hsHeader = { alg: 'HS256', x5c: chain.x5c }
  const xcodeCert = makeCert({ name: '/CN=StoreKit Testing in Xcode' })
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const jan1 = (y: number): Date => new Date(Date.UTC(y, 0, 1))

  const tamperedPayload = replacePart(genuine, 1, b64url(JSON.stringify({ ...np(), notificationType: 'REFUND' })))
  const tamperedHeader = replacePart(genuine, 0, b64url(JSON.stringify({ alg: 'ES256', x5c: chain.x5c, kid: 'x' })))

  const vectors: Vector[] = [
    v('genuine Sandbox notification', genuine, ok),
    v('genuine Production notification', signNotification(chain, np({ environment: 'Production' })), ok,
      { environment: 'Production', bundleId: BUNDLE_ID, appAppleId: APP_APPLE_ID }),
    v('leaf expired since, but valid at signedDate', signNotification(makeChain({ root, leaf: { notAfter: jan1(2025) } }), np()), ok),
    v('no signedDate: checked at the current time', signNotification(chain, np({ signedDate: null })), ok),
    v('root slot holds an unrelated certificate (trust comes from the configured root)',
      signNotification(chain, np(), [chain.leaf.b64, chain.intermediate.b64, stranger.root.b64]), ok),

    v('unknown root', signNotification(stranger, np()), no('chain_untrusted')),
    v('unknown root named like the trusted one', signNotification(impostor, np()), no('chain_untrusted')),
    v('unknown root, trusted root bytes in the root slot',
      signNotification(impostor, np(), [impostor.leaf.b64, impostor.intermediate.b64, root.b64]), no('chain_untrusted')),
    v('tampered payload', tamperedPayload, no('signature_invalid')),
    v('tampered header', tamperedHeader, no('signature_invalid')),
    v('signed by a key other than the leaf\'s', signJws({ header: { alg: 'ES256', x5c: chain.x5c }, payload: np(), key: otherKey }), no('signature_invalid')),
    v('alg none', signJws({ header: { alg: 'none', x5c: chain.x5c }, payload: np() }), no('alg_unsupported')),
    v('alg HS256 keyed with the leaf certificate', signJws({ header: hsHeader, payload: np(), key: chain.leaf.pem }), no('alg_unsupported')),
    v('alg HS256 keyed with the leaf public key', signJws({
      header: hsHeader,
      payload: np(),
      key: chain.leaf.publicKey.export({ type: 'spki', format: 'pem' }) as string
    }), no('alg_unsupported')),
    v('missing x5c', signJws({ header: { alg: 'ES256' }, payload: np(), key: chain.leaf.privateKey }), no('x5c_missing')),
    v('chain of 1', signNotification(chain, np(), [chain.leaf.b64]), no('chain_length')),
    v('chain of 2', signNotification(chain, np(), [chain.leaf.b64, chain.intermediate.b64]), no('chain_length')),
    v('chain of 4', signNotification(chain, np(), [...chain.x5c, root.b64]), no('chain_length')),
    v('x5c entries are not certificates', signNotification(chain, np(), ['AAAA', 'AAAA', 'AAAA']), no('x5c_malformed')),
    v('intermediate without its OID', signNotification(makeChain({ root, intermediate: { oids: [] } }), np()), no('intermediate_oid_missing')),
    v('intermediate with the leaf\'s OID instead', signNotification(makeChain({ root, intermediate: { oids: [OID_LEAF] } }), np()), no('intermediate_oid_missing')),
    v('leaf without its OID', signNotification(makeChain({ root, leaf: { oids: [] } }), np()), no('leaf_oid_missing')),
    v('leaf with the intermediate\'s OID instead', signNotification(makeChain({ root, leaf: { oids: [OID_INTERMEDIATE] } }), np()), no('leaf_oid_missing')),
    v('intermediate that is not a CA', signNotification(makeChain({ root, intermediate: { ca: false } }), np()), no('intermediate_not_ca')),
    v('leaf expired at signedDate', signNotification(makeChain({ root, leaf: { notAfter: jan1(2024) } }), np()), no('certificate_expired')),
    v('leaf not yet valid at signedDate', signNotification(makeChain({ root, leaf: { notBefore: jan1(2025) } }), np()), no('certificate_not_yet_valid')),
    v('intermediate expired at signedDate', signNotification(makeChain({ root, intermediate: { notAfter: jan1(2024) } }), np()), no('certificate_expired')),
    v('no signedDate, leaf expired now', signNotification(makeChain({ root, leaf: { notAfter: jan1(2025) } }), np({ signedDate: null })), no('certificate_expired')),
    v('leaf not signed by the intermediate', signNotification(makeChain({ root, leaf: { signingKey: otherKey } }), np()), no('chain_broken')),
    v('leaf naming another issuer', signNotification(makeChain({ root, leaf: { issuerName: '/C=US/O=storehook tests/CN=Another CA' } }), np()), no('chain_broken')),
    v('leaf with a P-384 key', (() => {
      const c = makeChain({ root, leaf: { curve: 'P-384' } })
      return signJws({ header: { alg: 'ES256', x5c: c.x5c }, payload: np(), key: c.leaf.privateKey })
    })(), no('leaf_key_unsupported')),
    v('Xcode environment, self-signed as Xcode does', signJws({
      header: { alg: 'ES256', x5c: [xcodeCert.b64] },
      payload: np({ environment: 'Xcode' }),
      key: xcodeCert.privateKey
    }), no('environment_untrusted')),
    v('Xcode environment under a trusted chain', signNotification(chain, np({ environment: 'Xcode' })), no('environment_untrusted')),
    v('LocalTesting environment under a trusted chain', signNotification(chain, np({ environment: 'LocalTesting' })), no('environment_untrusted')),
    v('signedDate is not a number', signNotification(chain, np({ signedDate: '2024-06-01' })), no('payload_malformed')),
    v('not a JWS: four parts', 'a.b.c.d', no('jws_malformed')),
    v('not a JWS: parts are not JSON', 'a.b.c', no('jws_malformed')),
    v('signature with characters outside base64url', `${genuine}!`, no('jws_malformed'))
  ]
  return { root, chain, vectors }
}
