// Bodies at rest in the SQLite engine: every notification and quarantined
// body is stored as body-codec.ts encodes it, against the certificate chain
// of its JWS header, which is kept once in body_chains. This is the only
// place that reads or writes body_chains and the only place that turns a
// stored body back into the bytes Apple sent; every row that leaves the
// engine carries those bytes, never the stored form.
import { createHash } from 'node:crypto'
import { count, eq, sql } from 'drizzle-orm'
import { preparedFor, type Db } from '../db/client.ts'
import { bodyChains } from '../db/schema.ts'
import type { BodyEncoding, VerificationStatus } from '../db/vocabulary.ts'
import { BodyDecodeError, chainOf, decodeBody, DIGEST_BYTES, encodeBody, piecesOf, usesChain, type ChainPieces } from './body-codec.ts'
import type { Readable } from './engine.ts'

export { BodyDecodeError }

// A body as one row of the outbox or the quarantine keeps it.
export interface StoredBody {
  body: Buffer
  bodyEncoding: BodyEncoding
  bodyChainId: number | null
}

// Who may add a chain on first sight. A chain row is forever (bodies stored
// against it need it), so a sender must not be able to add them at will:
// - 'any': a body whose signature chained to Apple's root ('verified'), so
//   the chain is one Apple issued: a handful, ever;
// - 'capped': a body accepted without that proof (VERIFY_SIGNATURES off, a
//   V1 body), added only while the table holds fewer than MAX_UNPROVEN_CHAINS;
// - 'known': a refused (quarantined) body, compressed only against a chain
//   already stored, never adding one.
export type ChainPolicy = 'any' | 'capped' | 'known'

// Apple's chains number a few a year; a test setup adds one or two. 64 rows
// of at most 16 KB (body-codec.ts MAX_CHAIN_BYTES) is at most 1 MB, whatever
// a sender posts. Past the cap, unproven bodies are stored with plain deflate.
export const MAX_UNPROVEN_CHAINS = 64

export const chainPolicyFor = (verification: VerificationStatus): ChainPolicy => verification === 'verified' ? 'any' : 'capped'

// A chain's pieces are derived from its bytes alone, so caching them can
// never go stale. They are cached by content, never by row id: a chain row
// inserted in a transaction that was rolled back leaves its id to be reused,
// and an id-keyed cache would then join bodies to the wrong chain.
const CACHED_CHAINS = 16

export class ChainCache {
  #byKey = new Map<string, ChainPieces>()

  get (key: string): ChainPieces | undefined {
    const c = this.#byKey.get(key)
    if (c !== undefined) {
      // Most recently used last: the first key is the one to drop.
      this.#byKey.delete(key)
      this.#byKey.set(key, c)
    }
    return c
  }

  set (key: string, chain: ChainPieces): void {
    this.#byKey.set(key, chain)
    if (this.#byKey.size > CACHED_CHAINS) this.#byKey.delete(this.#byKey.keys().next().value!)
  }
}

const p = sql.placeholder

function prepare (db: Db) {
  return {
    idByDigest: db.select({ id: bodyChains.id }).from(bodyChains).where(eq(bodyChains.digest, p('digest'))).prepare(),
    chainById: db.select({ chain: bodyChains.chain }).from(bodyChains).where(eq(bodyChains.id, p('id'))).prepare(),
    insert: db.insert(bodyChains).values({ digest: p('digest'), chain: p('chain'), firstSeenAt: p('now') })
      .returning({ id: bodyChains.id }).prepare(),
    count: db.select({ n: count() }).from(bodyChains).prepare(),
    // By the chain's full digest (encoding) and by its stream prefix (decoding).
    chains: new ChainCache()
  }
}

const statements = preparedFor(prepare)

// The chain row for `chain`, added when the policy allows; null when it is
// not stored and may not be. Runs inside the caller's transaction, so a new
// chain commits with the first body that needs it, or not at all.
function chainRow (db: Db, chain: Buffer, policy: ChainPolicy, now: number): { id: number; pieces: ChainPieces } | null {
  const st = statements(db)
  const digest = createHash('sha256').update(chain).digest('hex')
  let id = st.idByDigest.get({ digest })?.id
  if (id === undefined) {
    if (policy === 'known') return null
    if (policy === 'capped' && st.count.get()!.n >= MAX_UNPROVEN_CHAINS) return null
    id = st.insert.get({ digest, chain, now })!.id
  }
  let pieces = st.chains.get(digest)
  if (pieces === undefined) {
    pieces = piecesOf(chain)
    st.chains.set(digest, pieces)
  }
  return { id, pieces }
}

// What both engines do around their own chain lookups (this file for
// SQLite, pg/bodies.ts for PostgreSQL), written once.

// The stored form of `body`, given its chain's row (null: none stored).
export function storedForm (body: Buffer, row: { id: number; pieces: ChainPieces } | null): StoredBody {
  const encoded = encodeBody(body, row?.pieces ?? null)
  return { body: encoded.data, bodyEncoding: encoded.encoding, bodyChainId: usesChain(encoded.encoding) ? row!.id : null }
}

// The cache key of the chain a chained body was written with (its stream's
// digest prefix), or null for a body that names no chain.
export function chainKeyOf (stored: StoredBody): string | null {
  if (!usesChain(stored.bodyEncoding)) return null
  if (stored.body.length < DIGEST_BYTES) throw new BodyDecodeError(`${stored.bodyEncoding} body shorter than its chain digest`)
  return `d:${stored.body.subarray(0, DIGEST_BYTES).toString('hex')}`
}

// The pieces of the chain row a body names, read by the engine (undefined:
// no such row); remembered under the stream's key only when they match it.
export function piecesFromRow (stored: StoredBody, key: string, chain: Buffer | undefined, cache: ChainCache): ChainPieces {
  if (chain === undefined) throw new BodyDecodeError(`${stored.bodyEncoding} body whose chain ${String(stored.bodyChainId)} is not stored`)
  const pieces = piecesOf(chain)
  if (pieces.digest.equals(stored.body.subarray(0, DIGEST_BYTES))) cache.set(key, pieces)
  return pieces
}

// A row with its body as received, or null and why when it cannot be read
// back, without the columns that say how it was stored. `read` throws
// BodyDecodeError for such a body; anything else it throws passes on.
export function readable<T extends StoredBody> (row: T, read: () => Buffer): Readable<Omit<T, 'bodyEncoding' | 'bodyChainId'>> {
  const { bodyEncoding: _e, bodyChainId: _c, ...rest } = row
  try {
    return { ...rest, body: read(), bodyError: null }
  } catch (err) {
    if (!(err instanceof BodyDecodeError)) throw err
    return { ...rest, body: null, bodyError: err.message }
  }
}

// The stored form of a body received now.
export function storeBody (db: Db, body: Buffer, policy: ChainPolicy, now: number): StoredBody {
  const chain = chainOf(body)
  return storedForm(body, chain === null ? null : chainRow(db, chain, policy, now))
}

// The bytes as received. Throws BodyDecodeError when the row cannot give
// them back (a missing chain, a corrupt stream): never other bytes.
export function loadBody (db: Db, stored: StoredBody): Buffer {
  const key = chainKeyOf(stored)
  if (key === null) return decodeBody(stored.bodyEncoding, stored.body, null)
  const st = statements(db)
  const pieces = st.chains.get(key) ??
    piecesFromRow(stored, key, stored.bodyChainId === null ? undefined : st.chainById.get({ id: stored.bodyChainId })?.chain, st.chains)
  return decodeBody(stored.bodyEncoding, stored.body, pieces)
}

// A row read with its stored body (see readable).
export function withBody<T extends StoredBody> (db: Db, row: T): Readable<Omit<T, 'bodyEncoding' | 'bodyChainId'>> {
  return readable(row, () => loadBody(db, row))
}
