// How a notification's body is kept small at rest and given back byte for
// byte (issue 15). Most of a V2 body is Apple's certificate chain, repeated:
// once in the JWS header as sent, and again inside every nested signed
// transaction or renewal, base64url-encoded a second time. Deflate with a
// preset dictionary made of those encodings stores each of them as a few
// back-references, so a stored body costs little more than its payload.
// Pure functions over node:zlib and node:crypto, which Node and Deno both
// have, so every storage engine stores bodies the same way.
import { createHash } from 'node:crypto'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { MAX_BODY_LIMIT_BYTES } from '../config.ts'
import type { BodyEncoding } from '../db/vocabulary.ts'

export interface EncodedBody {
  encoding: BodyEncoding
  data: Buffer
}

// Deflate looks back at most 32 KB: dictionary bytes further than that from
// where a body's bytes are are never used, so a longer dictionary only costs
// memory and hashing.
const WINDOW = 32 * 1024

// A header longer than this is not kept as a chain: Apple's (three
// certificates, P-256/P-384) is 4.4 KB as sent, and the dictionary is about
// five times the header, so a much longer one would not fit the window
// anyway. The bound also keeps a hostile body from making a huge chain row.
export const MAX_CHAIN_BYTES = 16 * 1024

// The dictionary digest written before a deflate-dict stream: raw deflate
// carries no dictionary id (zlib's format does, raw does not), and inflating
// with another dictionary does not always fail: it may return other bytes.
// Eight bytes of SHA-256 make a wrong dictionary (a row joined to the wrong
// chain, a chain row rewritten) an error instead of a wrong body.
export const DIGEST_BYTES = 8

export function dictionaryDigest (dictionary: Buffer): Buffer {
  return createHash('sha256').update(dictionary).digest().subarray(0, DIGEST_BYTES)
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

// A V2 body's chain: the JWS header part exactly as sent (base64url of the
// header JSON, which holds x5c), the bytes its dictionary is made of. Bodies
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

// A chain's preset dictionary. Order matters because deflate reaches back at
// most 32 KB, and a match further back costs more bits: the header as sent
// goes first (farthest), since it is matched by the body's first bytes, when
// the whole dictionary is still within reach; the nested encodings go last
// (closest), since they are matched further into the body, kilobytes after
// its start. Measured (deflate stream, digest excluded): Apple's real TEST
// notification (no nested JWS) 388 B with this order, 384 B with the header
// last, 384 B with the header alone; a 12.6 KB generated V2 body with a
// nested transaction and renewal 950 B with this order, 951 B with the header
// last, 2,918 B with the header alone, 2,301 B without it. The order moves a
// few bytes; leaving out either part costs kilobytes.
export function dictionaryFor (chain: Buffer): Buffer {
  const dictionary = Buffer.concat([chain, encodedAt(chain, 0), encodedAt(chain, 1), encodedAt(chain, 2)])
  return dictionary.length > WINDOW ? dictionary.subarray(dictionary.length - WINDOW) : dictionary
}

// zlib's level 3, not its default 6: on 12.6 KB Apple-shaped bodies against
// their chain's dictionary (3,000 bodies, 3 rounds) level 3 took 78-100 us a
// body and level 6 105-139 us, for 0.6-1.3% more bytes; levels 1 and 2 were
// no faster than 3, and 9 no smaller than 6 by more than 0.5%.
const LEVEL = 3

// The smallest of the encodings tried, never bigger than the body: with a
// dictionary, deflate against it (digest first); without one (V1, a body
// without a chain), plain raw deflate; raw when compression does not pay.
// `digest` is dictionaryDigest(dictionary), for a caller that keeps it: it
// hashes the whole dictionary, which cost as much as a fifth of the deflate.
export function encodeBody (body: Buffer, dictionary: Buffer | null, digest?: Buffer): EncodedBody {
  if (dictionary !== null) {
    const deflated = deflateRawSync(body, { dictionary, level: LEVEL })
    if (deflated.length + DIGEST_BYTES < body.length) return { encoding: 'deflate-dict', data: Buffer.concat([digest ?? dictionaryDigest(dictionary), deflated]) }
  } else {
    const deflated = deflateRawSync(body, { level: LEVEL })
    if (deflated.length < body.length) return { encoding: 'deflate', data: deflated }
  }
  return { encoding: 'raw', data: body }
}

export class BodyDecodeError extends Error {
  override name = 'BodyDecodeError'
}

// The body as it was received. `maxBytes` bounds what a corrupt or hostile
// row can inflate to. Its default is the largest body the ingest can ever
// have accepted (BODY_LIMIT_BYTES' ceiling), not the current limit: an
// operator who lowers the limit must still read the rows stored before.
export function decodeBody (encoding: BodyEncoding, data: Buffer, dictionary: Buffer | null, maxBytes = MAX_BODY_LIMIT_BYTES, digest?: Buffer): Buffer {
  switch (encoding) {
    case 'raw':
      return data
    case 'deflate':
      return inflate(data, undefined, maxBytes)
    case 'deflate-dict': {
      if (dictionary === null) throw new BodyDecodeError('deflate-dict body without its dictionary')
      if (data.length < DIGEST_BYTES || !data.subarray(0, DIGEST_BYTES).equals(digest ?? dictionaryDigest(dictionary))) {
        throw new BodyDecodeError('deflate-dict body read with another dictionary than it was written with')
      }
      return inflate(data.subarray(DIGEST_BYTES), dictionary, maxBytes)
    }
    default:
      throw new BodyDecodeError(`unknown body encoding ${String(encoding satisfies never)}`)
  }
}

function inflate (data: Buffer, dictionary: Buffer | undefined, maxBytes: number): Buffer {
  try {
    return inflateRawSync(data, { maxOutputLength: maxBytes, ...(dictionary !== undefined ? { dictionary } : {}) })
  } catch (err) {
    throw new BodyDecodeError(`stored body does not inflate: ${(err as Error).message}`, { cause: err })
  }
}
