import t from 'tap'
import { bearerMatches, bearerToken, sameSecret } from '../../src/secrets.ts'

t.test('sameSecret: equal only for the same text, whatever the lengths', async (t) => {
  t.ok(sameSecret('s3cret', 's3cret'))
  t.notOk(sameSecret('s3cret', 's3creT'))
  t.notOk(sameSecret('', 's3cret'))
  t.notOk(sameSecret('s3cret-and-more', 's3cret'))
  t.ok(sameSecret('', ''))
})

t.test('bearerToken: only the Bearer scheme, empty otherwise', async (t) => {
  t.equal(bearerToken('Bearer abc'), 'abc')
  t.equal(bearerToken('Basic abc'), '')
  t.equal(bearerToken('bearer abc'), '')
  t.equal(bearerToken(undefined), '')
  t.ok(bearerMatches('Bearer abc', 'abc'))
  t.notOk(bearerMatches(undefined, 'abc'))
  t.notOk(bearerMatches('Bearer abd', 'abc'))
})
