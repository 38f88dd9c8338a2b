import t from 'tap'
import { maskTopLevelPassword, SECRET_MASK } from '../../src/ops/secret-mask.ts'

const mask = (text: string): string => maskTopLevelPassword(Buffer.from(text))

t.test('the value of every top-level "password" is masked, every other byte kept', async (t) => {
  t.equal(SECRET_MASK, '********')
  const cases: Array<[string, string, string]> = [
    ['plain', '{"notification_type":"X","password":"abc"}', '{"notification_type":"X","password":"********"}'],
    ['whitespace everywhere', '{ "password" \n:\t "abc" , "b":1 }', '{ "password" \n:\t "********" , "b":1 }'],
    ['escaped quotes and backslashes in the value', '{"password":"a\\"b\\\\","c":"d"}', '{"password":"********","c":"d"}'],
    ['a value ending in an escaped backslash', '{"password":"\\\\","c":"d"}', '{"password":"********","c":"d"}'],
    ['duplicates: every one', '{"password":"one","x":2,"password":"two"}', '{"password":"********","x":2,"password":"********"}'],
    ['a key spelled with an escape', '{"pass\\u0077ord":"abc"}', '{"pass\\u0077ord":"********"}'],
    ['a number', '{"password":12345,"b":1}', '{"password":"********","b":1}'],
    ['an object', '{"password":{"a":"}"},"b":1}', '{"password":"********","b":1}'],
    ['non-ASCII around it', '{"é":"ü","password":"ß€","z":"😀"}', '{"é":"ü","password":"********","z":"😀"}']
  ]
  for (const [name, input, expected] of cases) t.equal(mask(input), expected, name)
  for (const s of ['{"password":"one","x":2,"pass\\u0077ord":"two"}', '{"password":"a\\"b\\\\"}']) {
    t.equal(JSON.parse(mask(s)).password, SECRET_MASK, 'still JSON, and JSON.parse reads the mask')
  }
})

t.test('nothing else is touched', async (t) => {
  const same = [
    '{"unified_receipt":{"password":"nested"}}',
    '{"a":["password","x"],"b":[{"password":"in an array"}]}',
    '{"a":"\\"password\\":\\"not a key\\""}',
    '{"passwords":"x","Password":"y","password ":"z"}',
    '["password","x"]',
    '"password"',
    '',
    'not json "password":"x"'
  ]
  for (const s of same) t.equal(mask(s), s, s)
})

t.test('broken and deep bodies: masked as far as they read, never a throw', async (t) => {
  const levels = 200_000
  t.equal(mask(`{"password":"s","x":${'['.repeat(levels)}${']'.repeat(levels)}}`).slice(0, 30), '{"password":"********","x":[[[', 'deep after it')
  t.equal(mask(`{"x":${'['.repeat(levels)}${']'.repeat(levels)},"password":"s"}`).endsWith(']]]],"password":"********"}'), true, 'deep before it')
  t.equal(mask('{"password":"cut sh'), '{"password":"********"', 'an unterminated value: masked to the end')
  t.equal(mask('{"password":'), '{"password":', 'no value at all')
  t.equal(mask(`{"x":"${'\\'.repeat(100_001)}`), `{"x":"${'\\'.repeat(100_001)}`, 'an unterminated run of backslashes')
  const invalid = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xe2]), Buffer.from('","password":"s"}')])
  t.equal(maskTopLevelPassword(invalid), '{"a":"\ufffd\ufffd","password":"********"}', 'invalid UTF-8 decodes as it would whole')
  const big = Buffer.from(`{"password":"s",${'"k":"\\"",'.repeat(100_000)}"z":1}`)
  const start = performance.now()
  maskTopLevelPassword(big)
  t.ok(performance.now() - start < 2000, `linear on ${big.length} bytes of escaped strings`)
})
