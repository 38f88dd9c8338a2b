// A V1 notification's top-level `password` is the app's App Store shared
// secret. Targets get it (they get the exact bytes), but no view does: the
// admin API and the dashboard show this mask in its place, and nothing logs it.
import { CLOSE_ARRAY, CLOSE_OBJECT, jsonStringEnd, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from '../apple/depth.ts'

export const SECRET_MASK = '********'
const MASKED_TOKEN = Buffer.from(`"${SECRET_MASK}"`)

const COLON = 0x3a
const COMMA = 0x2c

function isSpace (c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function skipSpace (bytes: Buffer, i: number): number {
  while (isSpace(bytes[i])) i++
  return i
}

// A string token that never closes runs to the end of the text.
function stringEnd (bytes: Buffer, start: number): number {
  const end = jsonStringEnd(bytes, start)
  return end === -1 ? bytes.length : end
}

// "password" may be spelled with escapes ("pass\u0077ord"): JSON.parse reads
// that as the same key, so it is the same secret. Such a key is at most 50
// bytes (8 six-character escapes and the quotes); longer ones are not it.
function isPasswordKey (token: Buffer): boolean {
  if (token.length > 50) return false
  const text = token.toString('utf8')
  if (text === '"password"') return true
  if (!text.includes('\\')) return false
  try {
    return JSON.parse(text) === 'password'
  } catch {
    return false
  }
}

// The end of the value that starts at `i`: a string, an array or object
// (skipped by counting brackets outside strings, without recursion: a stored
// body may nest 100,000 levels), or a scalar up to the next separator.
function valueEnd (bytes: Buffer, i: number): number {
  const c = bytes[i]
  if (c === QUOTE) return stringEnd(bytes, i)
  if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
    let depth = 0
    for (let j = i; j < bytes.length; j++) {
      const d = bytes[j]
      if (d === QUOTE) j = stringEnd(bytes, j) - 1
      else if (d === OPEN_ARRAY || d === OPEN_OBJECT) depth++
      else if ((d === CLOSE_ARRAY || d === CLOSE_OBJECT) && --depth === 0) return j + 1
    }
    return bytes.length
  }
  let j = i
  while (j < bytes.length && bytes[j] !== COMMA && bytes[j] !== CLOSE_OBJECT && bytes[j] !== CLOSE_ARRAY && !isSpace(bytes[j])) j++
  return j
}

// The stored body as text, with the value of every top-level "password" key
// replaced by "********" and every other byte as it was: what a view shows of
// the raw body. Every occurrence is masked, because JSON.parse keeps the last
// of duplicate keys and another reader may keep the first. One linear pass
// over the bytes that never recurses and never throws, so it also masks
// bodies that no longer decode (nested too deep, cut short): wherever the
// text reads as a key of the top-level object, followed by ':', that key's
// value is masked. The cuts fall on ASCII bytes, so the rest decodes as UTF-8
// exactly as the whole would have.
export function maskTopLevelPassword (bytes: Buffer): string {
  let i = skipSpace(bytes, 0)
  if (bytes[i] !== OPEN_OBJECT) return bytes.toString('utf8')
  const out: Buffer[] = []
  let copiedTo = 0
  let depth = 0
  for (; i < bytes.length; i++) {
    const c = bytes[i]
    if (c === QUOTE) {
      const end = stringEnd(bytes, i)
      const colon = skipSpace(bytes, end)
      if (depth === 1 && bytes[colon] === COLON && isPasswordKey(bytes.subarray(i, end))) {
        const start = skipSpace(bytes, colon + 1)
        const stop = valueEnd(bytes, start)
        if (stop > start) {
          out.push(bytes.subarray(copiedTo, start), MASKED_TOKEN)
          copiedTo = stop
        }
        i = stop - 1
      } else {
        i = end - 1
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      depth++
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  out.push(bytes.subarray(copiedTo))
  return Buffer.concat(out).toString('utf8')
}
