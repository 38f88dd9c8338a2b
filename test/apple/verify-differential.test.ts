// Runs Apple's SignedDataVerifier (@apple/app-store-server-library, the
// reference for what is accepted) and storehook's verifier on every vector and
// forgery, and requires the same verdict.
//
// How Apple's verdict is read. Apple's verifier is built, offline (dates are
// checked at signedDate), for the app a vector targets: its bundle ID,
// appAppleId and environment, Sandbox or Production. (Built for Xcode or
// LocalTesting it skips every signature check, and a relay never builds one
// so.) Then:
// - it resolves: accepted;
// - INVALID_APP_IDENTIFIER: accepted. Apple raises it only after the chain and
//   the signature verified; storehook checks bundle IDs elsewhere
//   (APPLE_BUNDLE_IDS), not in the verifier;
// - any other status: refused. That includes INVALID_ENVIRONMENT, which,
//   built as above, Apple raises only for payloads claiming Xcode or
//   LocalTesting: storehook refuses those too (environment_untrusted).
import { sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  Environment,
  SignedDataVerifier,
  VerificationException,
  VerificationStatus
} from '@apple/app-store-server-library'
import t from 'tap'
import { createVerifier, defaultRootCertificates } from '../../src/apple/verify.ts'
import {
  APP_APPLE_ID,
  BUNDLE_ID,
  buildVectors,
  decodePart,
  makeChain,
  notificationPayload,
  replacePart,
  signJws,
  signNotification,
  type AppContext
} from '../helpers/apple-chain.ts'

type Verdict = 'accepted' | 'refused'

const fixture = (path: string): Buffer => readFileSync(new URL(`../fixtures/apple/${path}`, import.meta.url))
const libraryVector = (name: string): string => fixture(`library-vectors/mock_signed_data/${name}`).toString('utf8').trim()
const TEST_CA = fixture('library-vectors/certs/testCA.der')
const REAL = (JSON.parse(fixture('real/production-TEST-2024-10-17.json').toString('utf8')) as { signedPayload: string }).signedPayload
const APPLE_ROOTS = defaultRootCertificates()

async function appleVerdict (roots: Buffer[], app: AppContext, jws: string): Promise<{ verdict: Verdict; status: string }> {
  const env = app.environment === 'Production' ? Environment.PRODUCTION : Environment.SANDBOX
  const apple = new SignedDataVerifier(roots, false, env, app.bundleId, app.appAppleId)
  try {
    await apple.verifyAndDecodeNotification(jws)
    return { verdict: 'accepted', status: 'OK' }
  } catch (err) {
    if (!(err instanceof VerificationException)) throw err
    const status = VerificationStatus[err.status] ?? String(err.status)
    return { verdict: err.status === VerificationStatus.INVALID_APP_IDENTIFIER ? 'accepted' : 'refused', status }
  }
}

interface Case {
  name: string
  roots: Buffer[]
  app: AppContext
  jws: string
  // The verdict both must reach.
  expected: Verdict
}

const SANDBOX: AppContext = { environment: 'Sandbox', bundleId: BUNDLE_ID, appAppleId: APP_APPLE_ID }
const REAL_APP: AppContext = { environment: 'Production', bundleId: 'com.nineton.taller', appAppleId: 6450284872 }

function cases (): Case[] {
  const { root, vectors } = buildVectors()
  const realTampered = replacePart(REAL, 1, Buffer.from(JSON.stringify({ ...decodePart(REAL, 1), notificationType: 'REFUND' })).toString('base64url'))
  return [
    { name: 'library: testNotification', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('testNotification'), expected: 'accepted' },
    { name: 'library: wrongBundleId', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('wrongBundleId'), expected: 'accepted' },
    { name: 'library: missingX5CHeaderClaim', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('missingX5CHeaderClaim'), expected: 'refused' },
    { name: 'library: transactionInfo', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('transactionInfo'), expected: 'accepted' },
    { name: 'library: renewalInfo', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('renewalInfo'), expected: 'accepted' },
    { name: 'library: legacyTransaction', roots: [TEST_CA], app: SANDBOX, jws: libraryVector('legacyTransaction'), expected: 'refused' },
    { name: 'library: testNotification under Apple\'s root', roots: APPLE_ROOTS, app: SANDBOX, jws: libraryVector('testNotification'), expected: 'refused' },
    { name: 'real: Production TEST under Apple\'s root', roots: APPLE_ROOTS, app: REAL_APP, jws: REAL, expected: 'accepted' },
    { name: 'real: under testCA', roots: [TEST_CA], app: REAL_APP, jws: REAL, expected: 'refused' },
    { name: 'real: tampered payload', roots: APPLE_ROOTS, app: REAL_APP, jws: realTampered, expected: 'refused' },
    ...vectors.map((v) => ({ name: `generated: ${v.name}`, roots: [root.der], app: v.app, jws: v.jws, expected: v.expect.ok ? 'accepted' as const : 'refused' as const }))
  ]
}

t.test('storehook and Apple\'s library reach the same verdict on every vector', async (t) => {
  const all = cases()
  t.ok(all.length >= 40, `${all.length} vectors`)
  const rows: string[] = []
  for (const c of all) {
    const apple = await appleVerdict(c.roots, c.app, c.jws)
    const mine = createVerifier({ roots: c.roots }).verify(c.jws)
    const verdict: Verdict = mine.ok ? 'accepted' : 'refused'
    t.equal(apple.verdict, c.expected, `${c.name}: Apple ${apple.status}`)
    t.equal(verdict, apple.verdict, `${c.name}: storehook ${mine.ok ? 'accepted' : mine.reason}, Apple ${apple.status}`)
    rows.push(`${c.name}: Apple ${apple.status} / storehook ${mine.ok ? 'accepted' : mine.reason}`)
  }
  t.comment(rows.join('\n'))
})

t.test('the verdicts hold when storehook answers from its cache', async (t) => {
  // One verifier per root set, fed every vector twice: cached chains must not
  // change a single verdict.
  const verifiers = new Map<string, ReturnType<typeof createVerifier>>()
  const all = cases()
  for (const c of [...all, ...all]) {
    const key = c.roots.map((r) => r.toString('base64')).join()
    let v = verifiers.get(key)
    if (v === undefined) verifiers.set(key, v = createVerifier({ roots: c.roots }))
    t.equal(v.verify(c.jws).ok ? 'accepted' : 'refused', c.expected, c.name)
  }
  t.ok([...verifiers.values()].some((v) => v.stats().hits > 0), 'the cache was used')
})

// Signed inputs only a trusted chain's key could produce, on which storehook is
// deliberately stricter than Apple's library. Kept executable, so a change on
// either side shows up here.
t.test('where storehook is stricter than Apple, on purpose', async (t) => {
  const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

  // new Date(9e15) is an invalid Date; Apple compares validity against NaN,
  // every comparison is false, and no certificate is ever out of date.
  const expired = makeChain({ leaf: { notAfter: new Date(Date.UTC(2025, 0, 1)) } })
  const farFuture = signNotification(expired, notificationPayload({ signedDate: 9e15 }))

  // The issue admits ES256 only; Apple's jsonwebtoken takes any ES* that
  // matches the leaf's curve.
  const p384 = makeChain({ leaf: { curve: 'P-384' } })
  const input = `${b64url({ alg: 'ES384', x5c: p384.x5c })}.${b64url(notificationPayload())}`
  const es384 = `${input}.${sign('sha384', Buffer.from(input), { key: p384.leaf.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`

  // Apple never reads the root slot, so it need not even be a string.
  const good = makeChain()
  const numericRoot = signJws({ header: { alg: 'ES256', x5c: [good.leaf.b64, good.intermediate.b64, 42] }, payload: notificationPayload(), key: good.leaf.privateKey })

  for (const [name, chain, jws, reason] of [
    ['signedDate beyond any representable date, leaf expired', expired, farFuture, 'payload_malformed'],
    ['ES384 from a P-384 leaf', p384, es384, 'alg_unsupported'],
    ['x5c root slot is a number', good, numericRoot, 'x5c_malformed']
  ] as const) {
    const apple = await appleVerdict([chain.root.der], SANDBOX, jws)
    const mine = createVerifier({ roots: [chain.root.der] }).verify(jws)
    t.equal(apple.verdict, 'accepted', `${name}: Apple accepts`)
    t.equal(mine.ok ? 'accepted' : mine.reason, reason, `${name}: storehook refuses`)
  }
})
