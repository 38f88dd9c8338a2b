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

// True when `bytes`, read as JSON, opens more than `max` arrays and objects
// inside one another. One linear pass; brackets inside strings do not count.
// On text that is not JSON the answer is only a guess, and harmless: a text
// that JSON.parse accepts is read exactly, and any other one it refuses.
export function nestedDeeperThan (bytes: Buffer, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]
    if (c === QUOTE) {
      const end = jsonStringEnd(bytes, i)
      // Unterminated: not JSON, and nothing after it can open a level.
      if (end === -1) return false
      i = end - 1
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}
