// How deep a JSON text nests, found before JSON.parse sees it. V8's parser
// is iterative and takes 1 MB of "[" in its stride, but what it builds then
// breaks every recursive reader downstream: JSON.stringify (the admin API, the
// dashboard) overflows the stack on it. Apple's notifications nest 3 or 4
// levels (a V1 receipt list, a V2 payload's data section, a JWS header's x5c),
// so a text deeper than this limit is not Apple's and is refused outright.
export const MAX_JSON_DEPTH = 64

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

// True when `bytes`, read as JSON, opens more than `max` arrays and objects
// inside one another. One pass over the bytes, linear whatever they hold:
// brackets inside strings do not count, so a string is skipped with
// Buffer.indexOf (native, and Apple's bodies are mostly one long string), and
// a quote counts as closing it only after an even run of backslashes (each
// backslash is looked at once, by the quote that follows its run). UTF-8 is
// safe to scan byte by byte: no byte of a multi-byte character is ASCII.
// On text that is not JSON the answer is only a guess, and harmless: a text
// that JSON.parse accepts is read exactly, and any other one it refuses.
export function nestedDeeperThan (bytes: Buffer, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]
    if (c === QUOTE) {
      let end = i
      for (;;) {
        end = bytes.indexOf(QUOTE, end + 1)
        // Unterminated: not JSON, and nothing after it can open a level.
        if (end === -1) return false
        let k = end - 1
        while (bytes[k] === BACKSLASH) k--
        if ((end - 1 - k) % 2 === 0) break
      }
      i = end
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}
