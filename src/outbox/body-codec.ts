// How a notification's body is kept small at rest and given back byte for
// byte (issue 15). Most of a V2 body is Apple's certificate chain, repeated:
// once in the JWS header as sent, and again inside every nested signed
// transaction or renewal, base64url-encoded a second time. Each of those
// occurrences is stored as a reference to the chain (kept once, beside the
// bodies), and the rest deflated, so a stored body costs little more than its
// payload.
// Pure functions over node:zlib and node:crypto, which Node and Deno both
// have, so every storage engine stores bodies the same way.
import { createHash } from 'node:crypto'
import { deflateSync, inflateRawSync, inflateSync } from 'node:zlib'
import { MAX_BODY_LIMIT_BYTES } from '../config.ts'
import type { BodyEncoding } from '../db/vocabulary.ts'

export interface EncodedBody {
  encoding: BodyEncoding
  data: Buffer
}

// A header longer than this is not kept as a chain: Apple's (three
// certificates, P-256/P-384) is 4.4 KB as sent. The bound keeps a hostile
// body from making a huge chain row.
export const MAX_CHAIN_BYTES = 16 * 1024

// The chain digest written before a zlib-chain stream: the references
// name pieces of a chain by number, and the same numbers with another chain
// would give other bytes. Eight bytes of SHA-256 make a wrong chain (a row
// joined to the wrong chain, a chain row rewritten) an error instead of a
// wrong body.
export const DIGEST_BYTES = 8

const BASE64URL = /^[A-Za-z0-9_-]+$/

// A V2 body's chain: the JWS header part exactly as sent (base64url of the
// header JSON, which holds x5c), the bytes its pieces are made of. Bodies
// whose headers are byte-identical share one chain. null for a V1 body, a
// header without a certificate chain, or anything that does not parse: this
// runs on bytes from the network, so it never throws. Which header is taken
// only changes how well a body compresses, never what is read back.
export function chainOf (body: Buffer): Buffer | null {
  try {
    const header = firstKeyHeader(body) ?? parsedHeader(body)
    if (header === null || header.length === 0 || header.length > MAX_CHAIN_BYTES || !BASE64URL.test(header)) return null
    const decoded: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
    if (typeof decoded !== 'object' || decoded === null) return null
    const x5c = (decoded as { x5c?: unknown }).x5c
    if (!Array.isArray(x5c) || x5c.length === 0 || !x5c.every(c => typeof c === 'string')) return null
    return Buffer.from(header, 'latin1')
  } catch {
    return null
  }
}

const SIGNED_PAYLOAD = Buffer.from('"signedPayload"', 'latin1')
const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

// Apple's own layout, `{"signedPayload":"<header>.`, read without parsing the
// rest: JSON.parse of a 12 KB body was most of what finding its chain cost
// (issue 15 item 4). Only when signedPayload is the object's first key, so a
// key of that name in a nested object is never taken for it. Anything else
// goes the long way (parsedHeader).
function firstKeyHeader (body: Buffer): string | null {
  let i = 0
  while (isSpace(body[i])) i++
  if (body[i++] !== 0x7b) return null
  while (isSpace(body[i])) i++
  if (!body.subarray(i, i + SIGNED_PAYLOAD.length).equals(SIGNED_PAYLOAD)) return null
  i += SIGNED_PAYLOAD.length
  while (isSpace(body[i])) i++
  if (body[i++] !== 0x3a) return null
  while (isSpace(body[i])) i++
  if (body[i++] !== 0x22) return null
  // The header runs to the first '.' (or to the string's end: a header alone).
  const start = i
  const limit = Math.min(body.length, start + MAX_CHAIN_BYTES + 1)
  while (i < limit && BASE64URL_BYTE[body[i]!] === 1) i++
  if (body[i] !== 0x2e && body[i] !== 0x22) return null
  return body.toString('latin1', start, i)
}

const BASE64URL_BYTE = new Uint8Array(256)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') BASE64URL_BYTE[c.charCodeAt(0)] = 1

function parsedHeader (body: Buffer): string | null {
  const parsed: unknown = JSON.parse(body.toString('utf8'))
  if (typeof parsed !== 'object' || parsed === null) return null
  const jws = (parsed as { signedPayload?: unknown }).signedPayload
  if (typeof jws !== 'string') return null
  const dot = jws.indexOf('.')
  return dot === -1 ? jws : jws.slice(0, dot)
}

// The header as it appears once more inside the payload: a nested JWS
// (signedTransactionInfo, signedRenewalInfo) is a string in the payload's
// JSON, which is base64url-encoded as a whole, so the nested header is
// encoded again, starting at whatever offset mod 3 the JSON put it at. The
// characters that mix in the bytes before or after it (two at offset 1,
// three at offset 2, the last one when the length is not a multiple of 3)
// are left out: they differ from body to body.
function encodedAt (header: Buffer, offset: 0 | 1 | 2): Buffer {
  const bytes = Buffer.concat([Buffer.alloc(offset), header])
  let text = bytes.toString('base64url')
  if (bytes.length % 3 !== 0) text = text.slice(0, -1)
  return Buffer.from(text.slice([0, 2, 3][offset]), 'latin1')
}

// What a body is matched against: the chain's header as sent, and as it
// appears base64url-encoded again inside a nested JWS at each byte alignment.
// Found by a probe (its first bytes) and confirmed whole.
export interface ChainPieces {
  digest: Buffer
  pieces: Buffer[]
}

const PROBE_BYTES = 32
// Pieces shorter than this are not worth a reference (a test header can be tiny).
const MIN_PIECE_BYTES = 16

export function piecesOf (chain: Buffer): ChainPieces {
  return {
    digest: createHash('sha256').update(chain).digest().subarray(0, DIGEST_BYTES),
    pieces: [chain, encodedAt(chain, 0), encodedAt(chain, 1), encodedAt(chain, 2)]
  }
}

// Where each piece occurs, left to right, not overlapping: [offset, piece].
function occurrences (body: Buffer, pieces: Buffer[]): Array<[number, number]> {
  const found: Array<[number, number]> = []
  // The next occurrence of each piece at or after `from`, found once and
  // kept until the scan passes it: a few searches a body, not one per step.
  const next = (k: number, from: number): number => {
    const piece = pieces[k]!
    if (piece.length < MIN_PIECE_BYTES) return -1
    const probe = piece.subarray(0, PROBE_BYTES)
    for (let at = body.indexOf(probe, from); at !== -1; at = body.indexOf(probe, at + 1)) {
      if (piece.length <= PROBE_BYTES) return at
      if (at + piece.length <= body.length && body.compare(piece, PROBE_BYTES, piece.length, at + PROBE_BYTES, at + piece.length) === 0) return at
    }
    return -1
  }
  const at = pieces.map((_, k) => next(k, 0))
  let pos = 0
  for (;;) {
    let best = -1
    for (let k = 0; k < pieces.length; k++) {
      if (at[k]! !== -1 && at[k]! < pos) at[k] = next(k, pos)
      if (at[k]! !== -1 && (best === -1 || at[k]! < at[best]!)) best = k
    }
    if (best === -1) return found
    found.push([at[best]!, best])
    pos = at[best]! + pieces[best]!.length
  }
}

// zlib's level 3, not its default 6: on what is left of 12.6 KB Apple-shaped
// bodies it was about 30% faster for 1% more bytes; levels 1 and 2 were no
// faster than 3, and 9 no smaller than 6 by more than 0.5%.
const LEVEL = 3
// zlib's format, not raw deflate: its Adler-32 of what was deflated (the
// body, or the skeleton, whose chain pieces the digest checks) is compared by
// inflate, so a row damaged on disk is an error, never other bytes. Raw
// deflate (the first version's 'deflate' and 'deflate-chain') turned 855 of
// 1,065 single-byte corruptions of a row into a different body, forwarded
// without a word; the check costs 6 bytes a body.
// An 8 KB window and a 64 KB hash table, not zlib's 32 KB and 128 KB: a
// body's skeleton is a few KB, and the smaller state is cheaper to set up
// for each body (about 13 us a call against 13-55 us, measured alone).
// Inflate reads any window up to its own 32 KB.
const DEFLATE = { level: LEVEL, windowBits: 13, memLevel: 7 }

// An unsigned LEB128 varint: the skeleton's numbers are small.
function varint (n: number, out: number[]): void {
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
}

// Whether rows of this encoding name a chain (body_chain_id) to be read.
export function usesChain (encoding: BodyEncoding): encoding is 'zlib-chain' | 'deflate-chain' {
  return encoding === 'zlib-chain' || encoding === 'deflate-chain'
}

// The smallest of the encodings tried, never bigger than the body. With the
// chain's pieces: zlib-chain, the digest, then a zlib skeleton (the
// count of references; each one's distance from the end of the one before
// and its piece number; then every byte that is not a reference). Without
// (V1, a body without a chain), plain zlib; raw when nothing pays.
// Measured against deflate with a preset dictionary of the same pieces (the
// first form of this codec), on 12.6 KB generated and 18.9 KB Apple-chain
// bodies: 2.8 KB and 1.7 KB instead of 2.9 KB and 1.9 KB, in about half the
// time, since zlib no longer reads the 11-22 KB dictionary for every body.
export function encodeBody (body: Buffer, chain: ChainPieces | null): EncodedBody {
  if (chain !== null) {
    const refs = occurrences(body, chain.pieces)
    if (refs.length > 0) {
      const head: number[] = []
      varint(refs.length, head)
      const literals: Buffer[] = []
      let pos = 0
      for (const [at, k] of refs) {
        varint(at - pos, head)
        head.push(k)
        literals.push(body.subarray(pos, at))
        pos = at + chain.pieces[k]!.length
      }
      literals.push(body.subarray(pos))
      const deflated = deflateSync(Buffer.concat([Buffer.from(head), ...literals]), DEFLATE)
      if (deflated.length + DIGEST_BYTES < body.length) return { encoding: 'zlib-chain', data: Buffer.concat([chain.digest, deflated]) }
    }
  }
  const deflated = deflateSync(body, DEFLATE)
  if (deflated.length < body.length) return { encoding: 'zlib', data: deflated }
  return { encoding: 'raw', data: body }
}

export class BodyDecodeError extends Error {
  override name = 'BodyDecodeError'
}

// The body as it was received. `maxBytes` bounds what a corrupt or hostile
// row can inflate to. Its default is the largest body the ingest can ever
// have accepted (BODY_LIMIT_BYTES' ceiling), not the current limit: an
// operator who lowers the limit must still read the rows stored before.
export function decodeBody (encoding: BodyEncoding, data: Buffer, chain: ChainPieces | null, maxBytes = MAX_BODY_LIMIT_BYTES): Buffer {
  switch (encoding) {
    case 'raw':
      return data
    case 'zlib':
    case 'deflate':
      return inflate(encoding, data, maxBytes)
    case 'zlib-chain':
    case 'deflate-chain': {
      if (chain === null) throw new BodyDecodeError(`${encoding} body without its chain`)
      if (data.length < DIGEST_BYTES || !data.subarray(0, DIGEST_BYTES).equals(chain.digest)) {
        throw new BodyDecodeError(`${encoding} body read with another chain than it was written with`)
      }
      return rebuild(inflate(encoding, data.subarray(DIGEST_BYTES), maxBytes), chain.pieces, maxBytes)
    }
    default:
      throw new BodyDecodeError(`unknown body encoding ${String(encoding satisfies never)}`)
  }
}

// The body from its skeleton, every number checked: a corrupt row is an
// error, never other bytes or a body past `maxBytes`.
function rebuild (skeleton: Buffer, pieces: Buffer[], maxBytes: number): Buffer {
  let i = 0
  const read = (): number => {
    let n = 0
    for (let shift = 1; ; shift *= 128) {
      if (i >= skeleton.length || shift > 2 ** 42) throw new BodyDecodeError('chain skeleton is cut short')
      const b = skeleton[i++]!
      n += (b & 0x7f) * shift
      if (b < 0x80) return n
    }
  }
  const count = read()
  const refs: Array<[number, Buffer]> = []
  for (let r = 0; r < count; r++) {
    const gap = read()
    const piece = pieces[skeleton[i++] ?? -1]
    if (piece === undefined) throw new BodyDecodeError('chain skeleton names no piece of its chain')
    refs.push([gap, piece])
  }
  const parts: Buffer[] = []
  let total = 0
  for (const [gap, piece] of refs) {
    if (i + gap > skeleton.length) throw new BodyDecodeError('chain skeleton is cut short')
    parts.push(skeleton.subarray(i, i + gap), piece)
    i += gap
    total += gap + piece.length
    if (total > maxBytes) throw new BodyDecodeError(`stored body would be larger than ${maxBytes} bytes`)
  }
  parts.push(skeleton.subarray(i))
  total += skeleton.length - i
  if (total > maxBytes) throw new BodyDecodeError(`stored body would be larger than ${maxBytes} bytes`)
  return Buffer.concat(parts, total)
}

function inflate (encoding: BodyEncoding, data: Buffer, maxBytes: number): Buffer {
  try {
    return encoding.startsWith('zlib') ? inflateSync(data, { maxOutputLength: maxBytes }) : inflateRawSync(data, { maxOutputLength: maxBytes })
  } catch (err) {
    throw new BodyDecodeError(`stored body does not inflate: ${(err as Error).message}`, { cause: err })
  }
}
