// How deep a JSON text nests, found before JSON.parse sees it. V8's parser
// does not overflow on deep input, but it is slow on it (1.3 s for 1 MB of
// "[", the body limit, on the machine this was written on), and what it builds
// from a deep text breaks every recursive reader after it: JSON.stringify (the
// admin API, the dashboard) overflows the stack. Apple's notifications nest 3
// or 4 levels (a V1 receipt list, a V2 payload's data section, a JWS header's
// x5c), so a text deeper than this limit is not Apple's and is refused.
export const MAX_JSON_DEPTH = 64

export const QUOTE = 0x22
const BACKSLASH = 0x5c
export const OPEN_ARRAY = 0x5b
export const CLOSE_ARRAY = 0x5d
export const OPEN_OBJECT = 0x7b
export const CLOSE_OBJECT = 0x7d
const COMMA = 0x2c

// The index just past the JSON string token that opens at `start` (a quote),
// or -1 when it is never closed. Buffer.indexOf finds the next quote
// (natively: Apple's bodies are mostly one long string); it closes the string
// only after an even run of backslashes, and each backslash is looked at
// once, by the quote that ends its run, so this is linear. UTF-8 is safe to
// scan byte by byte: no byte of a multi-byte character is ASCII.
export function jsonStringEnd (bytes: Buffer, start: number): number {
  let end = start
  for (;;) {
    end = bytes.indexOf(QUOTE, end + 1)
    if (end === -1) return -1
    let k = end - 1
    while (bytes[k] === BACKSLASH) k--
    if ((end - 1 - k) % 2 === 0) return end + 1
  }
}

export interface JsonScan {
  // It opens more than `max` arrays and objects inside one another.
  tooDeep: boolean
  // The keys of the top-level object, in order and as JSON.parse reads them
  // (escapes decoded: "signed\u0050ayload" is signedPayload); empty when the
  // top level is not an object. Only the top level: that is where a body,
  // a JWS header and a JWS payload say what they are (signedPayload, alg,
  // x5c, notificationType), and the one level a duplicate can change routing
  // at. Deeper keys are left alone: collecting them would cost an allocation
  // per key of every V1 receipt for no decision storehook makes.
  keys: string[]
}

// One linear pass over `bytes`, read as JSON, before JSON.parse sees it:
// how deep it nests, and the top-level keys (JSON.parse silently keeps the
// last of a repeated key, so the repeats must be seen here). Brackets, commas
// and quotes inside strings do not count. On text that is not JSON the answer
// is only a guess, and harmless: a text that JSON.parse accepts is read
// exactly, and any other one it refuses. The keys cost nothing on the hot
// path: Apple's V2 body has one, its header two, its payload six or so.
// `withKeys` false skips the keys (for texts whose keys decide nothing).
export function scanJson (bytes: Buffer, max: number = MAX_JSON_DEPTH, withKeys = true): JsonScan {
  const keys: string[] = []
  let depth = 0
  let topIsObject = false
  // At depth 1 of an object, right after its "{" or a ",": the next string is a key.
  let expectKey = false
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]
    if (c === QUOTE) {
      const end = jsonStringEnd(bytes, i)
      // Unterminated: not JSON, and nothing after it can open a level.
      if (end === -1) return { tooDeep: false, keys }
      if (expectKey) {
        keys.push(readKey(bytes, i, end))
        expectKey = false
      }
      i = end - 1
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return { tooDeep: true, keys }
      if (depth === 1) topIsObject = expectKey = withKeys && c === OPEN_OBJECT
      else expectKey = false
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    } else if (c === COMMA && depth === 1) {
      expectKey = topIsObject
    }
  }
  return { tooDeep: false, keys }
}

// The string token bytes[start, end) (quotes included) as JSON.parse reads it.
// Decoding a slice that starts and ends at a quote gives the same characters
// as decoding the whole text (a quote ends any broken UTF-8 sequence).
function readKey (bytes: Buffer, start: number, end: number): string {
  const inner = bytes.toString('utf8', start + 1, end - 1)
  if (!inner.includes('\\')) return inner
  try {
    return JSON.parse(`"${inner}"`) as string
  } catch {
    // A broken escape: the whole text fails JSON.parse anyway.
    return inner
  }
}

// Keys as a parser that ignores case reads them. Go's encoding/json (the
// usual way a Go target reads a body) matches a key to a field ignoring case,
// with Unicode's simple folding ("\u017f" long s is s, "\u212a" Kelvin sign is
// k), and the last match wins: {"signedPayload": A, "SignedPayload": B} is B
// there. Upper then lower case puts each of those classes on one string (and
// joins a few more, such as "ss" and the sharp s: refusing more, never less).
export function foldKey (key: string): string {
  return key.toUpperCase().toLowerCase()
}

// The folded keys, and the first key that repeats one before it (exactly,
// after unescaping, or only in case), or null.
export function foldKeys (keys: readonly string[]): { folded: Set<string>; repeated: string | null } {
  const folded = new Set<string>()
  for (const key of keys) {
    const f = foldKey(key)
    if (folded.has(f)) return { folded, repeated: key }
    folded.add(f)
  }
  return { folded, repeated: null }
}
