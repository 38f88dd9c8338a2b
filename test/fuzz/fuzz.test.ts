// A short fuzz in the normal suite: it runs beside the other test files on a
// 2-core machine, so it stays small (few bodies near the 1 MB limit, a short
// VERIFY_SIGNATURES=off pass whose accepted bodies are each stored, forwarded
// and viewed twice). test/faults/fuzz.fault.ts runs 10,000 and 2,000.
import t from 'tap'
import { fuzz } from './run.ts'

const count = (n: number): number => Number(process.env.FUZZ_COUNT ?? n)

t.test('300 malformed and structurally mutated bodies under enforce: only authentic ones accepted, nothing else stored or forwarded, no 5xx, no crash',
  (t) => fuzz(t, { count: count(300), mode: 'enforce', families: ['malformed', 'structural'], big: 0.05 }))
t.test('structurally mutated bodies with VERIFY_SIGNATURES=off: each one accepted is forwarded byte-identical and viewable',
  (t) => fuzz(t, { count: count(40), mode: 'off', families: ['structural'], big: 0.05 }))
