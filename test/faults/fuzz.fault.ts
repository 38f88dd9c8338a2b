import t from 'tap'
import { QUICK } from '../helpers/ledger.ts'
import { fuzz } from '../fuzz/run.ts'

t.test('10,000 malformed bodies under enforce: all refused, none forwarded, no crash, memory flat', (t) => fuzz(t, Number(process.env.FUZZ_COUNT ?? (QUICK ? 2000 : 10_000))))
