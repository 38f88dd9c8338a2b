// A delivery worker's modes and the moves between them: the ones the design
// uses are allowed, every other one throws.
import t from 'tap'
import { enterMode, TRANSITIONS, type WorkerMode } from '../../src/delivery/worker-mode.ts'

const modes = Object.keys(TRANSITIONS) as WorkerMode[]

t.test('the allowed moves', async (t) => {
  t.same(TRANSITIONS, {
    idle: ['running', 'stopping'],
    running: ['probing', 'stopping'],
    probing: ['running', 'stopping'],
    stopping: ['stopped'],
    stopped: []
  })
  t.equal(enterMode('idle', 'running'), 'running', 'start')
  t.equal(enterMode('running', 'probing'), 'probing', 'the target fails')
  t.equal(enterMode('probing', 'running'), 'running', 'it answers again')
  t.equal(enterMode('idle', 'stopping'), 'stopping', 'an app closed before it was ready stops workers never started')
})

t.test('every other move throws, staying put included', async (t) => {
  for (const from of modes) {
    for (const to of modes) {
      if (TRANSITIONS[from].includes(to)) continue
      t.throws(() => enterMode(from, to), new RegExp(`from ${from} to ${to}`), `${from} → ${to}`)
    }
  }
  t.throws(() => enterMode('stopped', 'running'), 'a stopped worker never runs again')
  t.throws(() => enterMode('stopping', 'probing'), 'nor does a stopping one start probing')
})
