/**
 * Named states with guarded transitions. A workflow may declare
 * `states: { Pending: ['PaymentCharged', 'Cancelled'], PaymentCharged: [...], Completed: [] }`:
 * the first key is the initial state, each value lists the states it may move to.
 * `ctx.transition(to)` checks the move, records it in the history (replays do
 * not repeat it) and stores the current state on the run, where `rebound.workflow(id)` shows it.
 */
import { IllegalTransitionError, ValidationError } from '../errors.ts';
import type { RunEnv } from './run-env.ts';

export type StateSpec = Record<string, readonly string[]>;

export function checkStates(type: string, states: StateSpec | undefined): void {
  if (states === undefined) return;
  const names = Object.keys(states ?? {});
  if (typeof states !== 'object' || states === null || names.length === 0) {
    throw new ValidationError(`defineWorkflow("${type}").states`, 'must map each state to the states it may move to, e.g. { Pending: ["Done"], Done: [] }');
  }
  for (const [from, targets] of Object.entries(states)) {
    if (!Array.isArray(targets)) throw new ValidationError(`defineWorkflow("${type}").states.${from}`, 'must be an array of state names');
    for (const to of targets) {
      if (!names.includes(to)) throw new ValidationError(`defineWorkflow("${type}").states.${from}`, `"${to}" is not a declared state`);
    }
  }
}

export const initialState = (states: StateSpec | undefined): string | null => (states ? Object.keys(states)[0] : null);

export class StateMachine {
  constructor(
    private readonly states: StateSpec | undefined,
    public current: string | null,
  ) {}

  async transition(env: RunEnv, to: string): Promise<void> {
    if (!this.states) throw new ValidationError('transition', `workflow ${env.type} declares no states; add \`states\` to defineWorkflow`);
    const h = env.history;
    const { seq, record } = h.next('transition', to);
    const allowed = this.current == null ? [] : (this.states[this.current] ?? []);
    if (!(to in this.states) || !allowed.includes(to)) throw new IllegalTransitionError(env.type, this.current, to, [...allowed]);
    this.current = to;
    if (record?.status === 'completed') return;
    const now = h.now();
    await h.updateRun({ state: to }, now);
    await h.save({ ...(record ?? h.fresh(seq, 'transition', to)), status: 'completed', attempts: 1, finishedAt: now });
  }
}
