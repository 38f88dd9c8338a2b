// `node --import tsx bench/verify.ts`: notifications verified per second by
// Apple's SignedDataVerifier.verifyAndDecodeNotification and by storehook's
// verifier, on the same payloads, in the same run, one event loop, one core.
//
// Payloads: Apple's library test notification under its testCA (a P-256
// chain) and a real Production notification under Apple Root CA - G3 (P-384
// root and intermediate, as Apple signs today). Apple's verifier runs offline
// (dates at signedDate), as storehook does; it re-verifies the whole chain on
// every call by design, storehook once per chain, then only the payload.
import { verify as cryptoVerify, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { Environment, SignedDataVerifier } from '@apple/app-store-server-library'
import { createVerifier, defaultRootCertificates } from '../src/apple/verify.ts'
import { machine } from './lib.ts'

export interface VerifyBenchRow {
  payload: string
  apple: number
  storehook: number
  ratio: number
  // One ES256 check of the outer signature with a cached key and nothing
  // else: no verifier that checks the signature can go faster than this.
  ceiling: number
}

export interface VerifyBenchResult {
  // Notifications/s on an even mix of the payloads below.
  apple: number
  storehook: number
  ratio: number
  rows: VerifyBenchRow[]
}

export interface VerifyBenchOptions {
  // Per side, per round, per payload.
  durationS?: number
  rounds?: number
}

const fixture = (path: string): Buffer => readFileSync(new URL(`../test/fixtures/apple/${path}`, import.meta.url))

interface Payload {
  name: string
  jws: string
  roots: Buffer[]
  apple: SignedDataVerifier
}

function payloads (): Payload[] {
  const testCA = fixture('library-vectors/certs/testCA.der')
  const real = (JSON.parse(fixture('real/production-TEST-2024-10-17.json').toString('utf8')) as { signedPayload: string }).signedPayload
  const appleRoots = defaultRootCertificates()
  return [
    {
      name: 'library testNotification (testCA, P-256 chain)',
      jws: fixture('library-vectors/mock_signed_data/testNotification').toString('utf8').trim(),
      roots: [testCA],
      apple: new SignedDataVerifier([testCA], false, Environment.SANDBOX, 'com.example', 1234)
    },
    {
      name: 'real Production notification (Apple Root CA - G3)',
      jws: real,
      roots: appleRoots,
      apple: new SignedDataVerifier(appleRoots, false, Environment.PRODUCTION, 'com.nineton.taller', 6450284872)
    }
  ]
}

async function rate (durationS: number, once: () => unknown): Promise<number> {
  const end = performance.now() + durationS * 1000
  let n = 0
  let now = performance.now()
  const start = now
  while (now < end) {
    await once()
    n++
    now = performance.now()
  }
  return n / ((now - start) / 1000)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export async function runVerifyBench (opts: VerifyBenchOptions = {}): Promise<VerifyBenchResult> {
  const durationS = opts.durationS ?? 2
  const rounds = opts.rounds ?? 3
  const rows: VerifyBenchRow[] = []
  for (const p of payloads()) {
    const mine = createVerifier({ roots: p.roots })
    // Both must accept, or the figures mean nothing.
    await p.apple.verifyAndDecodeNotification(p.jws)
    const first = mine.verify(p.jws)
    if (!first.ok) throw new Error(`storehook refused ${p.name}: ${first.reason}`)
    const [header = '', payload = '', signature = ''] = p.jws.split('.')
    const x5c = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { x5c: string[] }).x5c
    const leafKey = { key: new X509Certificate(Buffer.from(x5c[0]!, 'base64')).publicKey, dsaEncoding: 'ieee-p1363' as const }
    const appleRates: number[] = []
    const mineRates: number[] = []
    const ceilingRates: number[] = []
    // Alternating rounds, so drift in the machine's load hits both sides.
    for (let i = 0; i < rounds; i++) {
      appleRates.push(await rate(durationS, async () => await p.apple.verifyAndDecodeNotification(p.jws)))
      mineRates.push(await rate(durationS, () => {
        if (!mine.verify(p.jws).ok) throw new Error(`storehook refused ${p.name}`)
      }))
      ceilingRates.push(await rate(durationS, () => {
        if (!cryptoVerify('sha256', Buffer.from(`${header}.${payload}`, 'latin1'), leafKey, Buffer.from(signature, 'base64url'))) throw new Error('the ceiling refused')
      }))
    }
    const apple = median(appleRates)
    const storehook = median(mineRates)
    rows.push({ payload: p.name, apple, storehook, ratio: storehook / apple, ceiling: median(ceilingRates) })
  }
  // An even mix: the harmonic mean of the rates.
  const mix = (k: 'apple' | 'storehook'): number => rows.length / rows.reduce((sum, r) => sum + 1 / r[k], 0)
  const apple = mix('apple')
  const storehook = mix('storehook')
  return { apple, storehook, ratio: storehook / apple, rows }
}

export function verifyTable (r: VerifyBenchResult): string[] {
  return [
    '| payload | Apple SignedDataVerifier /s | storehook /s | ratio (goal >= 20x) | one bare ES256 check /s (ceiling) | ceiling / Apple |',
    '|---|---|---|---|---|---|',
    ...r.rows.map((row) => `| ${row.payload} | ${Math.round(row.apple)} | ${Math.round(row.storehook)} | ${row.ratio.toFixed(1)}x | ${Math.round(row.ceiling)} | ${(row.ceiling / row.apple).toFixed(1)}x |`),
    `| even mix of both | ${Math.round(r.apple)} | ${Math.round(r.storehook)} | ${r.ratio.toFixed(1)}x | | |`
  ]
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const durationS = Number(process.env.BENCH_SECONDS ?? 2)
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  console.log(`Signature verification on ${machine()}: ${rounds} alternating rounds of ${durationS} s per side, medians\n`)
  console.log(verifyTable(await runVerifyBench({ durationS, rounds })).join('\n'))
}
