// Bodies at rest in the PostgreSQL engine, stored exactly as the SQLite
// engine stores them (body-codec.ts, against a chain kept once in
// body_chains), so a row copied from one engine to the other reads the same.
// What differs from ../bodies.ts is only what several instances sharing one
// database ask: a new chain row is inserted with ON CONFLICT on its digest in
// the caller's transaction, so two instances meeting the same new chain at
// once end with one row, and each commits its body with the chain it needs.
import { createHash } from 'node:crypto'
import { count, eq } from 'drizzle-orm'
import { bodyChains } from '../../db/schema-pg.ts'
import { BodyDecodeError, chainOf, decodeBody, DIGEST_BYTES, encodeBody, piecesOf, type ChainPieces } from '../body-codec.ts'
import { ChainCache, MAX_UNPROVEN_CHAINS, type ChainPolicy, type StoredBody } from '../bodies.ts'
import type { Readable } from '../engine.ts'
import type { Q } from './connection.ts'

// Pieces are derived from a chain's bytes alone, so they are cached by
// content and shared by every database this process opens; row ids are
// never cached (a rolled-back insert can leave its id to another chain).
const chains = new ChainCache()

// The chain row for `chain`, added when the policy allows; null when it is
// not stored and may not be. The cap of 'capped' is read, not locked: two
// instances at the cap at once may each add one more, a bound of a few rows.
async function chainRow (q: Q, chain: Buffer, policy: ChainPolicy, now: number): Promise<{ id: number; pieces: ChainPieces } | null> {
  const digest = createHash('sha256').update(chain).digest('hex')
  // The chain is almost always stored already: one lookup, no insert.
  let id = (await q.select({ id: bodyChains.id }).from(bodyChains).where(eq(bodyChains.digest, digest)))[0]?.id
  if (id === undefined) {
    if (policy === 'known') return null
    if (policy === 'capped' && (await q.select({ n: count() }).from(bodyChains))[0]!.n >= MAX_UNPROVEN_CHAINS) return null
    // Another instance inserting the same chain makes this wait for its
    // commit, then do nothing; the row it committed is then read.
    id = (await q.insert(bodyChains).values({ digest, chain, firstSeenAt: now }).onConflictDoNothing({ target: bodyChains.digest })
      .returning({ id: bodyChains.id }))[0]?.id ??
      (await q.select({ id: bodyChains.id }).from(bodyChains).where(eq(bodyChains.digest, digest)))[0]!.id
  }
  let pieces = chains.get(digest)
  if (pieces === undefined) {
    pieces = piecesOf(chain)
    chains.set(digest, pieces)
  }
  return { id, pieces }
}

// The stored form of a body received now.
export async function storeBody (q: Q, body: Buffer, policy: ChainPolicy, now: number): Promise<StoredBody> {
  const chain = chainOf(body)
  const row = chain === null ? null : await chainRow(q, chain, policy, now)
  const encoded = encodeBody(body, row?.pieces ?? null)
  return { body: encoded.data, bodyEncoding: encoded.encoding, bodyChainId: encoded.encoding === 'deflate-chain' ? row!.id : null }
}

// The bytes as received. Throws BodyDecodeError when the row cannot give
// them back (a missing chain, a corrupt stream): never other bytes.
export async function loadBody (q: Q, stored: StoredBody): Promise<Buffer> {
  if (stored.bodyEncoding !== 'deflate-chain') return decodeBody(stored.bodyEncoding, stored.body, null)
  if (stored.body.length < DIGEST_BYTES) throw new BodyDecodeError('deflate-chain body shorter than its chain digest')
  const key = `d:${stored.body.subarray(0, DIGEST_BYTES).toString('hex')}`
  let pieces = chains.get(key)
  if (pieces === undefined) {
    const chain = stored.bodyChainId === null ? undefined : (await q.select({ chain: bodyChains.chain }).from(bodyChains).where(eq(bodyChains.id, stored.bodyChainId)))[0]?.chain
    if (chain === undefined) throw new BodyDecodeError(`deflate-chain body whose chain ${String(stored.bodyChainId)} is not stored`)
    pieces = piecesOf(chain)
    // Only a chain that matches the stream's digest is remembered under it.
    if (pieces.digest.equals(stored.body.subarray(0, DIGEST_BYTES))) chains.set(key, pieces)
  }
  return decodeBody('deflate-chain', stored.body, pieces)
}

// A row with the body as received (or null and why), without the columns
// that say how it was stored.
export async function withBody<T extends StoredBody> (q: Q, row: T): Promise<Readable<Omit<T, 'bodyEncoding' | 'bodyChainId'>>> {
  const { bodyEncoding: _e, bodyChainId: _c, ...rest } = row
  try {
    return { ...rest, body: await loadBody(q, row), bodyError: null }
  } catch (err) {
    if (!(err instanceof BodyDecodeError)) throw err
    return { ...rest, body: null, bodyError: err.message }
  }
}
