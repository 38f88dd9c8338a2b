// A short fuzz in the normal suite, sized to take no longer than the 500
// malformed bodies alone did: few structural bodies near the 1 MB limit, and
// a short VERIFY_SIGNATURES=off pass (each body it accepts is stored,
// forwarded and viewed twice). test/faults/fuzz.fault.ts runs 10,000 and 2,000.
import t from 'tap'
import { fuzz } from './run.ts'

const count = (n: number): number => Number(process.env.FUZZ_COUNT ?? n)

t.test('500 malformed and structurally mutated bodies under enforce: only authentic ones accepted, nothing else stored or forwarded, no 5xx, no crash',
  (t) => fuzz(t, { count: count(500), mode: 'enforce', families: ['malformed', 'structural'], big: 0.1 }))
t.test('structurally mutated bodies with VERIFY_SIGNATURES=off: each one accepted is forwarded byte-identical and viewable',
  (t) => fuzz(t, { count: count(60), mode: 'off', families: ['structural'], big: 0.1 }))
