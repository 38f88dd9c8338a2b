// Bodies at rest in the PostgreSQL engine, stored exactly as the SQLite
// engine stores them (body-codec.ts, against a chain kept once in
// body_chains), so a row copied from one engine to the other reads the same.
// What differs from ../bodies.ts is only what several instances sharing one
// database ask: a new chain row is inserted with ON CONFLICT on its digest in
// the caller's transaction, so two instances meeting the same new chain at
// once end with one row, and each commits its body with the chain it needs.
import { createHash } from 'node:crypto'
import { count, eq, sql } from 'drizzle-orm'
import { bodyChains } from '../../db/schema-pg.ts'
import { BodyDecodeError, chainOf, decodeBody, piecesOf, type ChainPieces } from '../body-codec.ts'
import { ChainCache, chainKeyOf, MAX_UNPROVEN_CHAINS, piecesFromRow, readable, storedForm, type ChainPolicy, type StoredBody } from '../bodies.ts'
import type { Readable } from '../engine.ts'
import type { Q } from './connection.ts'
import { lockKey } from './coordination.ts'

// Pieces are derived from a chain's bytes alone, so they are cached by
// content and shared by every database this process opens; row ids are
// never cached (a rolled-back insert can leave its id to another chain).
const chains = new ChainCache()

// Enough for every chain Apple signs with and more: unproven ones are capped
// at MAX_UNPROVEN_CHAINS anyway.
const CACHED_IDS = 1000

// The row id of each chain digest of one database, so that storing a body
// whose chain is known costs no round trip. Safe to keep because nothing
// deletes a chain row, so a committed id stays that chain's for good; an id
// is learned only once the transaction that saw it has committed (one that
// rolls back may leave its id to another chain, or to none).
export class ChainIds {
  #committed = new Map<string, number>()

  // A transaction's view: what is committed, plus what it found itself.
  transaction (): TxChainIds {
    const learned = new Map<string, number>()
    return {
      get: (digest) => this.#committed.get(digest) ?? learned.get(digest),
      learn: (digest, id) => { learned.set(digest, id) },
      committed: () => {
        for (const [digest, id] of learned) {
          this.#committed.set(digest, id)
          if (this.#committed.size > CACHED_IDS) this.#committed.delete(this.#committed.keys().next().value!)
        }
      }
    }
  }
}

export interface TxChainIds {
  get: (digest: string) => number | undefined
  learn: (digest: string, id: number) => void
  // Called once the transaction committed.
  committed: () => void
}

// A transaction that keeps nothing (compaction, quarantine: rare writes).
const NO_IDS: TxChainIds = { get: () => undefined, learn: () => {}, committed: () => {} }

// A transaction-level advisory lock taken before adding an unproven chain.
const UNPROVEN_CHAIN_LOCK = lockKey('unproven-chain')

// The chain row for `chain`, added when the policy allows; null when it is
// not stored and may not be. An unproven chain ('capped') is added only by
// the transaction holding UNPROVEN_CHAIN_LOCK, held to its commit, so it
// counts every chain the others added and the cap holds exactly on any
// number of instances. The lock is tried, never waited for: a shared commit
// may already wait on another's insert of the same digest, and waiting here
// too could deadlock. Without the lock the body is stored plainly deflated,
// as past the cap; the next body with that chain adds it. New chains are
// rare: a known chain never comes here.
async function chainRow (q: Q, chain: Buffer, policy: ChainPolicy, now: number, ids: TxChainIds): Promise<{ id: number; pieces: ChainPieces } | null> {
  const digest = createHash('sha256').update(chain).digest('hex')
  // The chain is almost always stored already: known here, or one lookup.
  let id = ids.get(digest) ?? (await q.select({ id: bodyChains.id }).from(bodyChains).where(eq(bodyChains.digest, digest)))[0]?.id
  if (id === undefined) {
    if (policy === 'known') return null
    if (policy === 'capped') {
      const { rows: [lock] } = await q.execute<{ held: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${UNPROVEN_CHAIN_LOCK}) AS held`)
      if (lock?.held !== true) return null
      if ((await q.select({ n: count() }).from(bodyChains))[0]!.n >= MAX_UNPROVEN_CHAINS) return null
    }
    // Another instance inserting the same chain makes this wait for its
    // commit, then do nothing; the row it committed is then read.
    id = (await q.insert(bodyChains).values({ digest, chain, firstSeenAt: now }).onConflictDoNothing({ target: bodyChains.digest })
      .returning({ id: bodyChains.id }))[0]?.id ??
      (await q.select({ id: bodyChains.id }).from(bodyChains).where(eq(bodyChains.digest, digest)))[0]!.id
  }
  ids.learn(digest, id)
  let pieces = chains.get(digest)
  if (pieces === undefined) {
    pieces = piecesOf(chain)
    chains.set(digest, pieces)
  }
  return { id, pieces }
}

// The stored form of a body received now.
export async function storeBody (q: Q, body: Buffer, policy: ChainPolicy, now: number, ids: TxChainIds = NO_IDS): Promise<StoredBody> {
  const chain = chainOf(body)
  return storedForm(body, chain === null ? null : await chainRow(q, chain, policy, now, ids))
}

// The bytes as received. Throws BodyDecodeError when the row cannot give
// them back (a missing chain, a corrupt stream): never other bytes.
export async function loadBody (q: Q, stored: StoredBody): Promise<Buffer> {
  const key = chainKeyOf(stored)
  if (key === null) return decodeBody(stored.bodyEncoding, stored.body, null)
  const pieces = chains.get(key) ?? piecesFromRow(stored, key, stored.bodyChainId === null
    ? undefined
    : (await q.select({ chain: bodyChains.chain }).from(bodyChains).where(eq(bodyChains.id, stored.bodyChainId)))[0]?.chain, chains)
  return decodeBody(stored.bodyEncoding, stored.body, pieces)
}

// A row read with its stored body (see ../bodies.ts readable): the chain is
// read first, so the decoding itself is the shared, synchronous one.
export async function withBody<T extends StoredBody> (q: Q, row: T): Promise<Readable<Omit<T, 'bodyEncoding' | 'bodyChainId'>>> {
  let loaded: Buffer
  try {
    loaded = await loadBody(q, row)
  } catch (err) {
    return readable(row, () => { throw err })
  }
  return readable(row, () => loaded)
}

export { BodyDecodeError }
