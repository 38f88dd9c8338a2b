import t from 'tap'
import { QUICK } from '../helpers/ledger.ts'
import { fuzz } from '../fuzz/run.ts'

const count = (full: number, quick: number): number => Number(process.env.FUZZ_COUNT ?? (QUICK ? quick : full))

t.test('10,000 malformed and structurally mutated bodies under enforce: only authentic ones accepted, no crash, memory flat',
  (t) => fuzz(t, { count: count(10_000, 2000), mode: 'enforce', families: ['malformed', 'structural'], big: 0.3 }))
t.test('2,000 structurally mutated bodies with VERIFY_SIGNATURES=off: each one accepted is forwarded byte-identical and viewable',
  (t) => fuzz(t, { count: count(2000, 200), mode: 'off', families: ['structural'], big: 0.3 }))
