// A short fuzz in the normal suite (about 20 s on a busy 2-core machine);
// test/faults/fuzz.fault.ts runs 10,000.
import t from 'tap'
import { fuzz } from './run.ts'

t.test('500 malformed bodies under enforce: all refused, none forwarded, no crash', (t) => fuzz(t, Number(process.env.FUZZ_COUNT ?? 500)))
