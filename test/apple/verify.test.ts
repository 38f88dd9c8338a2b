import { fileURLToPath } from 'node:url'
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  APPLE_ROOT_CA_G3_SHA256,
  createVerifier,
  defaultRootCertificates,
  encodeOid,
  hasExtension,
  loadRootCertificates,
  type VerifyResult
} from '../../src/apple/verify.ts'
import {
  buildVectors,
  decodePart,
  makeCert,
  makeChain,
  notificationPayload,
  OID_INTERMEDIATE,
  OID_LEAF,
  replacePart,
  SIGNED_DATE,
  signNotification
} from '../helpers/apple-chain.ts'

const fixture = (path: string): Buffer => readFileSync(new URL(`../fixtures/apple/${path}`, import.meta.url))
const libraryVector = (name: string): string => fixture(`library-vectors/mock_signed_data/${name}`).toString('utf8').trim()
const TEST_CA = fixture('library-vectors/certs/testCA.der')
const REAL = (JSON.parse(fixture('real/production-TEST-2024-10-17.json').toString('utf8')) as { signedPayload: string }).signedPayload
const APPLE_CERTS = fileURLToPath(new URL('../fixtures/apple/certs/', import.meta.url))

function refusal (r: VerifyResult): string {
  return r.ok ? 'accepted' : r.reason
}

t.test('the bundled root is Apple Root CA - G3, checked by its published fingerprint', async (t) => {
  const der = readFileSync(new URL('../fixtures/apple/certs/AppleRootCA-G3.cer', import.meta.url))
  t.equal(createHash('sha256').update(der).digest('hex'), '63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179')
  t.equal(APPLE_ROOT_CA_G3_SHA256, '63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179')
  const roots = defaultRootCertificates()
  t.equal(roots.length, 1)
  t.ok(roots[0]!.equals(der))
  t.match(new X509Certificate(roots[0]!).subject, /CN=Apple Root CA - G3/)
})

t.test('the real Production notification verifies under the bundled root at its signedDate', async (t) => {
  const verifier = createVerifier({ roots: defaultRootCertificates() })
  const leaf = new X509Certificate(Buffer.from((decodePart(REAL, 0).x5c as string[])[0]!, 'base64'))
  t.ok(Date.parse(leaf.validTo) < Date.now(), 'its leaf has expired since (2025-10-11)')
  const r = verifier.verify(REAL)
  t.ok(r.ok, refusal(r))
  if (r.ok) {
    t.equal(r.payload.notificationType, 'TEST')
    t.equal(r.payload.signedDate, 1729136651128)
    t.same(r.payload.data, { appAppleId: 6450284872, bundleId: 'com.nineton.taller', environment: 'Production' })
  }
  t.equal(refusal(verifier.verify(REAL)), 'accepted', 'again, from the cache')
  t.equal(verifier.stats().hits, 1)

  const tampered = replacePart(REAL, 1, Buffer.from(JSON.stringify({ ...decodePart(REAL, 1), notificationType: 'REFUND' })).toString('base64url'))
  t.equal(refusal(verifier.verify(tampered)), 'signature_invalid', 'its payload changed: refused, cached chain or not')
  t.equal(refusal(createVerifier({ roots: [TEST_CA] }).verify(REAL)), 'chain_untrusted', 'not under a test root')
})

t.test('Apple library vectors, under testCA as the root', async (t) => {
  const verifier = createVerifier({ roots: [TEST_CA] })
  const test = verifier.verify(libraryVector('testNotification'))
  t.ok(test.ok, `testNotification: ${refusal(test)}`)
  if (test.ok) t.equal(test.payload.signedDate, 1681314324000)
  // Apple's library refuses wrongBundleId with INVALID_APP_IDENTIFIER, after its
  // signature and chain verified; storehook checks bundle IDs elsewhere.
  t.equal(refusal(verifier.verify(libraryVector('wrongBundleId'))), 'accepted', 'wrongBundleId: the signature is good')
  t.equal(refusal(verifier.verify(libraryVector('missingX5CHeaderClaim'))), 'x5c_missing')
  t.equal(refusal(verifier.verify(libraryVector('transactionInfo'))), 'accepted')
  t.equal(refusal(verifier.verify(libraryVector('renewalInfo'))), 'accepted')
  t.equal(refusal(verifier.verify(libraryVector('legacyTransaction'))), 'jws_malformed')
  t.equal(refusal(createVerifier({ roots: defaultRootCertificates() }).verify(libraryVector('testNotification'))), 'chain_untrusted')
})

t.test('every genuine shape is accepted and every forgery refused, with its own reason', async (t) => {
  const { root, vectors } = buildVectors()
  // A fresh verifier per vector: each is judged on its own, never from a
  // chain another vector left in the cache.
  for (const v of vectors) {
    const r = createVerifier({ roots: [root.der] }).verify(v.jws)
    t.equal(refusal(r), v.expect.ok ? 'accepted' : v.expect.reason, v.name)
    if (!r.ok) t.ok(r.message.length > 10, `${v.name}: says why in words`)
  }
  // And all through one verifier, so cached chains meet every forgery too.
  const shared = createVerifier({ roots: [root.der] })
  for (const v of [...vectors, ...vectors]) {
    t.equal(refusal(shared.verify(v.jws)), v.expect.ok ? 'accepted' : v.expect.reason, `${v.name}, shared verifier`)
  }
})

t.test('a cached chain still gets the environment, signedDate and signature checks', async (t) => {
  const chain = makeChain()
  const verifier = createVerifier({ roots: [chain.root.der] })
  const at = (signedDate: number | null): string => signNotification(chain, notificationPayload({ signedDate }))
  t.equal(refusal(verifier.verify(at(SIGNED_DATE))), 'accepted')
  t.same([verifier.stats().misses, verifier.stats().hits, verifier.stats().cacheEntries], [1, 0, 1])

  const genuine = at(SIGNED_DATE + 1000)
  const tampered = replacePart(genuine, 1, Buffer.from(JSON.stringify({ ...decodePart(genuine, 1), notificationType: 'REFUND' })).toString('base64url'))
  t.equal(refusal(verifier.verify(tampered)), 'signature_invalid', 'tampered payload')
  const otherSig = at(SIGNED_DATE + 3000).split('.')[2]!
  t.equal(refusal(verifier.verify(replacePart(genuine, 2, otherSig))), 'signature_invalid', 'another payload\'s signature')
  t.equal(refusal(verifier.verify(replacePart(genuine, 2, otherSig.slice(0, 40)))), 'signature_invalid', 'a truncated signature')
  t.equal(refusal(verifier.verify(at(Date.UTC(2040, 0, 1)))), 'certificate_expired', 'signedDate after the chain expired')
  t.equal(refusal(verifier.verify(at(Date.UTC(2020, 0, 1)))), 'certificate_not_yet_valid', 'signedDate before the chain was valid')
  t.equal(refusal(verifier.verify(at(8.64e15 + 1))), 'payload_malformed', 'signedDate beyond any date')
  t.equal(refusal(verifier.verify(signNotification(chain, notificationPayload({ environment: 'Xcode' })))), 'environment_untrusted')
  t.equal(refusal(verifier.verify(signNotification(chain, { ...notificationPayload(), environment: 'LocalTesting', data: undefined }))), 'environment_untrusted', 'top-level environment (transactions)')
  t.equal(refusal(verifier.verify(signNotification(chain, { ...notificationPayload(), data: undefined, summary: { environment: 'Xcode' } }))), 'environment_untrusted', 'summary environment')
  t.equal(refusal(verifier.verify(signNotification(chain, { ...notificationPayload(), data: undefined, appData: { environment: 'Xcode' } }))), 'environment_untrusted', 'appData environment')
  t.equal(refusal(verifier.verify(signNotification(chain, '!!!'))), 'payload_malformed', 'payload not base64url')
  t.equal(refusal(verifier.verify(signNotification(chain, Buffer.from('[1]').toString('base64url')))), 'payload_malformed', 'payload not an object')
  t.equal(refusal(verifier.verify(at(null))), 'accepted', 'no signedDate: now, inside the chain\'s validity')
  t.equal(refusal(verifier.verify(genuine)), 'accepted')
  const s = verifier.stats()
  t.equal(s.misses, 1, 'only the first payload verified the chain')
  t.equal(s.cacheEntries, 1)
  t.equal(s.accepted, 3)
  t.equal(s.refusedBy.signature_invalid, 3)
  t.equal(s.refusedBy.environment_untrusted, 4)
})

t.test('only fully verified chains enter the cache, and it is bounded', async (t) => {
  const chains = [makeChain(), makeChain(), makeChain()]
  const verifier = createVerifier({ roots: chains.map((c) => c.root.der), cacheSize: 2 })
  const good = chains.map((c) => signNotification(c, notificationPayload()))
  const forged = replacePart(good[0]!, 1, Buffer.from('{"notificationType":"REFUND"}').toString('base64url'))
  t.equal(refusal(verifier.verify(forged)), 'signature_invalid', 'a genuine chain carrying a forged payload')
  t.equal(verifier.stats().cacheEntries, 0, 'was not cached')
  const stranger = makeChain()
  for (let i = 0; i < 10; i++) verifier.verify(signNotification(stranger, notificationPayload()))
  t.equal(verifier.stats().cacheEntries, 0, 'nor were untrusted chains')

  verifier.verify(good[0]!)
  verifier.verify(good[1]!)
  verifier.verify(good[0]!) // now the most recently used
  verifier.verify(good[2]!) // evicts good[1]
  t.same([verifier.stats().cacheEntries, verifier.stats().evictions], [2, 1])
  const before = verifier.stats()
  t.ok(verifier.verify(good[0]!).ok)
  t.ok(verifier.verify(good[1]!).ok)
  const after = verifier.stats()
  t.equal(after.hits - before.hits, 1, 'the recently used chain was kept')
  t.equal(after.misses - before.misses, 1, 'the least recently used one was evicted')

  const uncached = createVerifier({ roots: [chains[0]!.root.der], cacheSize: 0 })
  t.ok(uncached.verify(good[0]!).ok)
  t.ok(uncached.verify(good[0]!).ok)
  t.same([uncached.stats().hits, uncached.stats().misses, uncached.stats().cacheEntries], [0, 2, 0])
})

t.test('certificate validity allows Apple\'s 60 s of skew, no more', async (t) => {
  const notAfter = Date.UTC(2025, 0, 1)
  const chain = makeChain({ leaf: { notAfter: new Date(notAfter) } })
  const verifier = createVerifier({ roots: [chain.root.der] })
  const at = (signedDate: number): string => signNotification(chain, notificationPayload({ signedDate }))
  t.equal(refusal(verifier.verify(at(notAfter + 30_000))), 'accepted')
  t.equal(refusal(verifier.verify(at(notAfter + 90_000))), 'certificate_expired')
  t.equal(refusal(createVerifier({ roots: [chain.root.der] }).verify(at(notAfter + 90_000))), 'certificate_expired', 'uncached too')
})

t.test('the root\'s own validity bounds the chain', async (t) => {
  const root = makeCert({ name: '/CN=Short-lived Root', ca: true, notAfter: new Date(Date.UTC(2024, 0, 1)) })
  const chain = makeChain({ root })
  const r = createVerifier({ roots: [root.der] }).verify(signNotification(chain, notificationPayload({ signedDate: SIGNED_DATE })))
  t.equal(refusal(r), 'certificate_expired')
})

t.test('Apple\'s OIDs are found only where an extension names them', async (t) => {
  t.same([...encodeOid(OID_LEAF)], [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06, 0x0b, 0x01])
  t.same([...encodeOid(OID_INTERMEDIATE)], [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06, 0x02, 0x01])
  t.throws(() => encodeOid('1'), /not an OID/)
  t.throws(() => encodeOid('1.2.x'), /not an OID/)

  const wwdr = readFileSync(`${APPLE_CERTS}AppleWWDRCA-G6.cer`)
  const leaf = readFileSync(`${APPLE_CERTS}Prod-ECC-MAS-iTunes-Receipt-Signing-2025-2027.cer`)
  const root = readFileSync(`${APPLE_CERTS}AppleRootCA-G3.cer`)
  t.ok(hasExtension(wwdr, encodeOid(OID_INTERMEDIATE)), 'Apple WWDR G6 is marked as the intermediate')
  t.notOk(hasExtension(wwdr, encodeOid(OID_LEAF)))
  t.ok(hasExtension(leaf, encodeOid(OID_LEAF)), 'Apple\'s signing leaf is marked as the leaf')
  t.notOk(hasExtension(root, encodeOid(OID_LEAF)))
  t.notOk(hasExtension(root, encodeOid(OID_INTERMEDIATE)))

  // The leaf's OID, as DER, inside another extension's value: a substring
  // search would find it.
  const oidTlv = Buffer.concat([Buffer.from([0x06, 0x0a]), encodeOid(OID_LEAF)]).toString('hex')
  const chain = makeChain()
  const smuggler = makeCert({
    name: '/C=US/O=storehook tests/CN=Smuggler',
    issuer: chain.intermediate,
    oids: [],
    extensions: [{ oid: '1.3.6.1.4.1.55555.2', valueHex: oidTlv }]
  })
  t.ok(smuggler.der.includes(encodeOid(OID_LEAF)), 'the bytes are in the certificate')
  t.notOk(hasExtension(smuggler.der, encodeOid(OID_LEAF)), 'but not as an extension ID')
  const jws = signNotification({ ...chain, leaf: smuggler, x5c: [smuggler.b64, chain.intermediate.b64, chain.root.b64] }, notificationPayload())
  t.equal(refusal(createVerifier({ roots: [chain.root.der] }).verify(jws)), 'leaf_oid_missing')

  // Truncations and garbage: false, never a throw.
  for (let n = 0; n < leaf.length; n += 7) t.equal(hasExtension(leaf.subarray(0, n), encodeOid(OID_LEAF)), false)
  for (const junk of [Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x80, 0, 0]), Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1]),
    Buffer.from([0x1f, 0x01, 0x00]), Buffer.from([0x30, 0x02, 0x30, 0x00]), Buffer.from([0x30, 0x04, 0x30, 0x02, 0xa3, 0x00]),
    Buffer.from([0x30, 0x06, 0x30, 0x04, 0xa3, 0x02, 0x30, 0x00]), Buffer.from([0x30, 0x08, 0x30, 0x06, 0xa3, 0x04, 0x30, 0x02, 0x30, 0x00]),
    Buffer.from([0x30, 0x06, 0x30, 0x04, 0xa3, 0x02, 0x04, 0x00]), Buffer.from([0x30, 0x08, 0x30, 0x06, 0xa3, 0x04, 0x30, 0x02, 0x04, 0x00]),
    Buffer.from([0x02, 0x00])]) {
    t.equal(hasExtension(junk, encodeOid(OID_LEAF)), false)
  }
})

t.test('verify() never throws, whatever it is given', async (t) => {
  const chain = makeChain()
  const verifier = createVerifier({ roots: [chain.root.der] })
  const h = (header: unknown): string => Buffer.from(JSON.stringify(header)).toString('base64url')
  const payload = Buffer.from(JSON.stringify(notificationPayload())).toString('base64url')
  const cases: Array<[unknown, string]> = [
    [undefined, 'jws_malformed'],
    [null, 'jws_malformed'],
    [42, 'jws_malformed'],
    [{}, 'jws_malformed'],
    ['', 'jws_malformed'],
    ['.', 'jws_malformed'],
    ['..', 'jws_malformed'],
    ['.a.b', 'jws_malformed'],
    ['a.b', 'jws_malformed'],
    ['a..b.', 'jws_malformed'],
    [`${h(null)}.${payload}.`, 'jws_malformed'],
    [`${h([1])}.${payload}.`, 'jws_malformed'],
    [`${h('x')}.${payload}.`, 'jws_malformed'],
    [`!!.${payload}.`, 'jws_malformed'],
    [`${h({})}.${payload}.`, 'alg_unsupported'],
    [`${h({ alg: 'ES384', x5c: chain.x5c })}.${payload}.`, 'alg_unsupported'],
    [`${h({ alg: 'ES256', x5c: chain.x5c })}..`, 'payload_malformed'],
    [`${h({ alg: 'ES256', x5c: chain.x5c })}.${payload}.`, 'signature_invalid'],
    [`${h({ alg: 'ES256', x5c: null })}.${payload}.`, 'x5c_missing'],
    [`${h({ alg: 'ES256', x5c: 'abc' })}.${payload}.`, 'x5c_malformed'],
    [`${h({ alg: 'ES256', x5c: {} })}.${payload}.`, 'x5c_malformed'],
    [`${h({ alg: 'ES256', x5c: [] })}.${payload}.`, 'chain_length'],
    [`${h({ alg: 'ES256', x5c: [1, 2, 3] })}.${payload}.`, 'x5c_malformed'],
    [`${h({ alg: 'ES256', x5c: [chain.leaf.b64, chain.intermediate.b64, 3] })}.${payload}.`, 'x5c_malformed'],
    [`${h({ alg: 'ES256', x5c: [chain.leaf.b64, 'AAAA', chain.root.b64] })}.${payload}.AAAA`, 'signature_invalid'],
    [`${h({ alg: 'ES256', x5c: ['A'.repeat(20_000), 'AAAA', 'AAAA'] })}.${payload}.`, 'x5c_malformed'],
    [`${h({ alg: 'ES256', x5c: [chain.root.b64, chain.root.b64, chain.root.b64] })}.${payload}.`, 'signature_invalid']
  ]
  for (const [input, reason] of cases) {
    let r: VerifyResult | undefined
    t.doesNotThrow(() => { r = verifier.verify(input as string) }, `input ${JSON.stringify(input)?.slice(0, 60)}`)
    t.equal(r !== undefined ? refusal(r) : 'threw', reason, `input ${JSON.stringify(input)?.slice(0, 60)}`)
  }
  t.equal(verifier.stats().accepted, 0)
})

t.test('loadRootCertificates reads PEM, PEM bundles and DER, and says clearly what it cannot', async (t) => {
  const dir = t.testdir({})
  const pem = readFileSync(`${APPLE_CERTS}AppleRootCA-G3.pem`)
  const der = readFileSync(`${APPLE_CERTS}AppleRootCA-G3.cer`)
  const wwdr = readFileSync(`${APPLE_CERTS}AppleWWDRCA-G6.pem`)
  const write = (name: string, data: Buffer | string): string => {
    const path = join(dir, name)
    writeFileSync(path, data)
    return path
  }
  const roots = loadRootCertificates([write('root.pem', pem), write('root.cer', der), write('bundle.pem', Buffer.concat([pem, wwdr]))])
  t.equal(roots.length, 4)
  t.ok(roots[0]!.equals(der), 'PEM decodes to the same DER')
  t.ok(roots[1]!.equals(der))
  t.ok(roots[2]!.equals(der))
  t.equal(new X509Certificate(roots[3]!).subject.includes('G6'), true, 'every certificate of a bundle')
  t.throws(() => loadRootCertificates([join(dir, 'missing.pem')]), /cannot read root certificate file .*missing\.pem/)
  t.throws(() => loadRootCertificates([write('junk.cer', 'not a certificate')]), /junk\.cer is not an X\.509 certificate/)
  t.throws(() => loadRootCertificates([write('key.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')]), /holds no CERTIFICATE block/)
  t.throws(() => loadRootCertificates([write('bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')]), /bad\.pem is not an X\.509 certificate/)
})

t.test('createVerifier refuses a configuration it cannot honour', async (t) => {
  t.throws(() => createVerifier({ roots: [] }), /at least one trusted root/)
  t.throws(() => createVerifier({ roots: [Buffer.from('nope')] }), /trusted root #0 is not a DER X\.509 certificate/)
  t.throws(() => createVerifier({ roots: [TEST_CA], cacheSize: -1 }), /cacheSize/)
  t.throws(() => createVerifier({ roots: [TEST_CA], cacheSize: 1.5 }), /cacheSize/)
  const twoRoots = createVerifier({ roots: [TEST_CA, ...defaultRootCertificates()], cacheSize: 1 })
  t.ok(twoRoots.verify(REAL).ok)
  t.ok(twoRoots.verify(libraryVector('testNotification')).ok)
  t.ok(twoRoots.verify(REAL).ok)
  t.same([twoRoots.stats().cacheEntries, twoRoots.stats().cacheCapacity, twoRoots.stats().evictions], [1, 1, 2])
})
