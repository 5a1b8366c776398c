/** What every workflow operation shares during one execution of a run. */
import type { JobContext } from '../define.ts';
import type { Json } from '../job.ts';
import type { Classifier, RetryPolicy } from '../policies/retry.ts';
import type { History } from './history.ts';
import type { WorkflowHost } from './host.ts';

export interface StepInfo {
  /** This step's attempt, 1-based, counted across executions of the workflow. */
  attempt: number;
  /** Stable for this run and step: pass it to the service you call as its idempotency key. */
  idempotencyKey: string;
  /** Aborted when the workflow's attempt is (lease lost, timeout, shutdown). */
  signal: AbortSignal;
}

/** A step's compensation, registered when the step completed (first run or replay). */
export interface Compensation {
  seq: number;
  name: string;
  result: Json;
  fn: (result: any, info: StepInfo) => unknown;
  retry: RetryPolicy;
}

export interface RunEnv {
  history: History;
  host: WorkflowHost;
  ctx: JobContext;
  type: string;
  retry: RetryPolicy;
  classify?: Classifier;
  compensations: Compensation[];
  /** The input's sensitive values (the type's `redact` paths), scrubbed from every error the history keeps. */
  secrets: string[];
  /** Steps started and not yet settled (parallel steps under Promise.all): compensation waits for them. */
  inFlight: Set<Promise<unknown>>;
}

/** Tracks a step until it settles. */
export function track<T>(env: RunEnv, step: Promise<T>): Promise<T> {
  env.inFlight.add(step);
  const forget = () => env.inFlight.delete(step);
  step.then(forget, forget);
  return step;
}

/** Waits for every step still running, so a sibling that completes meanwhile is compensated too. */
export async function settled(env: RunEnv): Promise<void> {
  while (env.inFlight.size > 0) await Promise.allSettled([...env.inFlight]);
}

export const stepKey = (env: RunEnv, seq: number, name: string) => `rebound:${env.ctx.jobId}:${seq}:${name}`;

