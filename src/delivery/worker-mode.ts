// The modes of a target's worker (worker.ts), and which changes of mode are
// allowed. The worker keeps its mode in one field and changes it only through
// enterMode(), so a change the design does not foresee fails loudly instead
// of leaving a worker half running.
export type WorkerMode =
  // Created, not started: it takes nothing and claims nothing.
  | 'idle'
  // Claims ahead and sends on every slot; takes fresh deliveries it has room for.
  | 'running'
  // The target is failing (verdict.ts FAILING_AFTER): one probe at a time,
  // on the backoff, nothing claimed ahead, no fresh delivery taken.
  | 'probing'
  // Shutting down: nothing new is claimed or sent; in-flight deliveries
  // finish or are aborted at the deadline, everything held is given back.
  | 'stopping'
  // Done: its client is closed.
  | 'stopped'

export const TRANSITIONS: Readonly<Record<WorkerMode, readonly WorkerMode[]>> = {
  idle: ['running', 'stopping'],
  running: ['probing', 'stopping'],
  probing: ['running', 'stopping'],
  stopping: ['stopped'],
  stopped: []
}

// The mode to move to, if the move from `from` is allowed; throws otherwise.
export function enterMode (from: WorkerMode, to: WorkerMode): WorkerMode {
  if (!TRANSITIONS[from].includes(to)) throw new Error(`A delivery worker cannot go from ${from} to ${to}.`)
  return to
}
