// JSON read so that every number reaches the receiver with the value Apple
// sent. JSON.parse turns each number into a double: an integer past 2^53, or
// a decimal with more digits than a double holds, would come out of
// JSON.stringify as other digits. Apple's numbers fit today (ids are strings;
// dates, prices and app ids are far below 2^53), so the usual path is plain
// JSON.parse after one linear scan that proves it. A number that would
// change travels as a marker string instead and is written back as its exact
// text. Written by hand: Node 20 has neither JSON.parse's source text access
// nor JSON.rawJSON (both from V8 11.4, Node 21), and the lossless JSON
// libraries parse every text in JavaScript, several times slower than
// JSON.parse, for a case that does not happen.
import { randomUUID } from 'node:crypto'
import { jsonStringEnd, QUOTE } from '../apple/depth.ts'

const MINUS = 0x2d
const ZERO = 0x30
const NINE = 0x39
// What a JSON number token is made of, after its first character.
const NUMBER_BYTES = new Set([...'0123456789+-.eE'].map((c) => c.charCodeAt(0)))

// Digits and exponent of a JSON number's exact decimal value: "1.50e3" and
// "1500" are both "15e2". Loops, not regexes: a hostile token of a million
// zeros must cost a million steps, not their square.
function decimalValue (token: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token)
  if (m === null) return token
  const digits = m[2]! + (m[3] ?? '')
  let start = 0
  while (start < digits.length && digits.charCodeAt(start) === ZERO) start++
  if (start === digits.length) return '0'
  let end = digits.length
  while (digits.charCodeAt(end - 1) === ZERO) end--
  let written = m[4] ?? '0'
  const sign = written.startsWith('-') ? '-' : ''
  let at = sign === '' && written.startsWith('+') ? 1 : sign.length
  while (at < written.length - 1 && written.charCodeAt(at) === ZERO) at++
  written = written.slice(at)
  // Past 20 digits no double is that far from 1 (a finite nonzero one has an
  // exponent of 3 digits): the value differs from any double's, and a BigInt
  // of a sender's million-digit exponent would cost a second to parse.
  if (written.length > 20) return `${m[1]}${digits.slice(start, end)}e${sign}${written}!`
  // BigInt: an exponent of twenty digits must not round.
  const exponent = BigInt(sign + written) - BigInt(m[3]?.length ?? 0) + BigInt(digits.length - end)
  return `${m[1]}${digits.slice(start, end)}e${exponent}`
}

// Whether JSON.stringify(JSON.parse(token)) has the token's value.
export function keepsValue (token: string): boolean {
  const n = Number(token)
  if (Number.isSafeInteger(n) && /^-?\d+$/.test(token)) return true
  return Number.isFinite(n) && decimalValue(String(n)) === decimalValue(token)
}

// The number tokens of a JSON text whose value a double would change, as
// [start, end) byte ranges. Strings are skipped whole (jsonStringEnd), so a
// digit inside one never counts. The text is JSON already (the caller has
// parsed it), so a token is whatever number characters follow its first.
function changedNumbers (bytes: Buffer): Array<[number, number]> {
  const found: Array<[number, number]> = []
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!
    if (c === QUOTE) {
      const end = jsonStringEnd(bytes, i)
      if (end === -1) break
      i = end - 1
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      let end = i + 1
      while (end < bytes.length && NUMBER_BYTES.has(bytes[end]!)) end++
      if (!keepsValue(bytes.toString('latin1', i, end))) found.push([i, end])
      i = end - 1
    }
  }
  return found
}

// One per document: the marker is drawn at random the first time a number
// needs it, so no string a sender wrote can pose as one.
export class ExactJson {
  #marker: string | null = null

  // `bytes` parsed, numbers that a double would change as marker strings.
  // `parsed` is JSON.parse(bytes) when the caller has it already: returned
  // as it is when every number fits, which is Apple's case.
  parse (bytes: Buffer, parsed?: unknown): unknown {
    const changed = changedNumbers(bytes)
    if (changed.length === 0) return parsed === undefined ? JSON.parse(bytes.toString('utf8')) : parsed
    this.#marker ??= randomUUID()
    const pieces: Buffer[] = []
    let at = 0
    for (const [start, end] of changed) {
      pieces.push(bytes.subarray(at, start), Buffer.from(`"\\u0000${this.#marker}:${bytes.toString('latin1', start, end)}"`))
      at = end
    }
    pieces.push(bytes.subarray(at))
    return JSON.parse(Buffer.concat(pieces).toString('utf8'))
  }

  // JSON.stringify of a value built from parse()'s results, with every
  // marker written back as the number it stands for.
  stringify (value: unknown): string {
    const text = JSON.stringify(value)
    if (this.#marker === null) return text
    // JSON.stringify writes U+0000 as \u0000; a marker's number has only number characters.
    return text.replaceAll(new RegExp(`"\\\\u0000${this.#marker}:([-+.eE0-9]+)"`, 'g'), '$1')
  }
}
