import t from 'tap'
import { AppError, errorTable } from '../src/errors.ts'

t.test('AppError takes its status from the one table', async (t) => {
  const err = new AppError('BODY_TOO_LARGE')
  t.equal(err.statusCode, 413)
  t.equal(err.message, errorTable.BODY_TOO_LARGE.message)
  t.equal(new AppError('BODY_NOT_JSON', 'Unexpected token at 3').message, 'Unexpected token at 3')
})
