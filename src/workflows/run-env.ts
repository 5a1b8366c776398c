/** What every workflow operation shares during one execution of a run. */
import type { JobContext } from '../define.ts';
import type { Json } from '../job.ts';
import { Snooze, ValidationError } from '../errors.ts';
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
  /** Operations started and not yet settled (parallel steps under Promise.all): compensation and sleep wait for them. */
  inFlight: Set<Promise<unknown>>;
  /** The durable wait (sleep, waitFor, join) this execution is in, if any: one at a time. */
  pendingWait: string | null;
  /** The earliest Snooze an operation of this execution ended with: the run sleeps until then. */
  earliestSnooze: Snooze | null;
}

/** Tracks an operation until it settles, and the time it asks to sleep until, if it does. */
export function track<T>(env: RunEnv, step: Promise<T>): Promise<T> {
  env.inFlight.add(step);
  const forget = () => env.inFlight.delete(step);
  step.then(forget, (err: unknown) => {
    forget();
    if (err instanceof Snooze) env.earliestSnooze = earliest(env.earliestSnooze, err);
  });
  return step;
}

/**
 * When the run goes to sleep, the time it sleeps until: the earliest that any of its operations asked for
 * (a step's retry beside a signal's hourly look wakes at the retry). Waking for one does not hurt the others:
 * each position that is not yet due sleeps again until its own recorded time.
 */
export function sleepUntilEarliest(env: RunEnv, snooze: Snooze): Snooze {
  return earliest(env.earliestSnooze, snooze);
}

const earliest = (a: Snooze | null, b: Snooze): Snooze => (a && a.runAt < b.runAt ? a : b);

/**
 * Durable waits go one at a time. A run records one thing it waits for and sleeps until one wake time, so two
 * waits at once (`Promise.race([ctx.waitFor('x'), ctx.sleep(ms)])`) would sleep until whichever asked first and
 * be woken by only one of them. A wait counts as pending until a tick after it settles, also when a replay
 * finds it recorded, so racing waits are refused on every execution alike.
 */
export function oneWait<T>(env: RunEnv, label: string, wait: () => Promise<T>): Promise<T> {
  if (env.pendingWait) {
    return Promise.reject(
      new ValidationError(
        label,
        `called while ${env.pendingWait} is still pending; a workflow waits for one thing at a time. To race a signal against a timeout, ` +
          'use ctx.waitFor(name, { timeoutMs }); to wait for several signals or children, await them one after another ' +
          '(signals sent meanwhile are kept), or join all the children at once',
      ),
    );
  }
  env.pendingWait = label;
  const waiting = track(env, wait());
  const done = () => (env.pendingWait = null);
  waiting.then(done, done);
  return waiting;
}

/** Waits for every step still running, so a sibling that completes meanwhile is compensated too. */
export async function settled(env: RunEnv): Promise<void> {
  while (env.inFlight.size > 0) await Promise.allSettled([...env.inFlight]);
}

export const stepKey = (env: RunEnv, seq: number, name: string) => `rebound:${env.ctx.jobId}:${seq}:${name}`;

