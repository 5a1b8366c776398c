/** The `ctx` a workflow's `run` receives: durable operations over the run's history. */
import type { JobContext, Logger } from '../define.ts';
import type { Json } from '../job.ts';
import { join, spawn, type ChildOutcome, type ChildRef, type SpawnOptions } from './children.ts';
import { oneWait, track, type RunEnv, type StepInfo } from './run-env.ts';
import { waitFor, type WaitOptions } from './signals.ts';
import type { StateMachine } from './states.ts';
import { runStep, type StepOptions } from './step.ts';
import { sleep } from './timers.ts';

export interface WorkflowContext {
  jobId: string;
  type: string;
  /** The version this run started with (kept for its whole life): branch on it when the code changes. */
  version: number;
  /** The workflow job's attempt (failed steps sleep and retry without using it). */
  attempt: number;
  /** The current named state, or null when the workflow declares none. */
  readonly state: string | null;
  signal: AbortSignal;
  logger: Logger;
  /** The underlying job context. */
  job: JobContext;
  /** Runs `fn` at most once to success; later executions get its recorded result. */
  step<T>(name: string, fn: (info: StepInfo) => Promise<T> | T, opts?: StepOptions<T>): Promise<T>;
  /** A durable timer: the workflow sleeps, holding no worker, for `ms` or until the date. */
  sleep(msOrUntil: number | Date): Promise<void>;
  /** Waits, holding no worker, for `rebound.signal(jobId, name, payload)`; returns its payload. */
  waitFor<T = Json>(name: string, opts?: WaitOptions): Promise<T>;
  /** Enqueues a child job (once per history position, even across replays). */
  spawn(type: string, payload: unknown, opts?: SpawnOptions): Promise<ChildRef>;
  /** Waits, holding no worker, until every child has finished; returns their outcomes. */
  join(children: ChildRef[]): Promise<ChildOutcome[]>;
  /** Moves to a declared state; an undeclared move throws IllegalTransitionError. */
  transition(to: string): Promise<void>;
}

export function makeWorkflowContext(env: RunEnv, version: number, states: StateMachine): WorkflowContext {
  return {
    jobId: env.ctx.jobId,
    type: env.type,
    version,
    attempt: env.ctx.attempt,
    get state() {
      return states.current;
    },
    signal: env.ctx.signal,
    logger: env.ctx.logger,
    job: env.ctx,
    step: (name, fn, opts) => track(env, runStep(env, name, fn, opts)),
    sleep: (ms) => oneWait(env, 'ctx.sleep', () => sleep(env, ms)),
    waitFor: (name, opts) => oneWait(env, `ctx.waitFor(${JSON.stringify(name)})`, () => waitFor(env, name, opts)),
    spawn: (type, payload, opts) => spawn(env, type, payload, opts),
    join: (children) => oneWait(env, 'ctx.join', () => join(env, children)),
    transition: (to) => states.transition(env, to),
  };
}
