/**
 * `ctx.step(name, fn, opts)`: runs `fn` until it succeeds once, records its
 * JSON result, and returns the recorded result on every later execution
 * without calling `fn`. A failed attempt puts the workflow to sleep until the
 * step's own backoff (a Snooze: the workflow's attempts are not charged), and
 * records that retry time on the step, so a run woken earlier does not retry it early;
 * a permanent error, or the step's last attempt, fails the workflow for good.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { BreakerGuard } from '../define.ts';
import { storable, UNSTORABLE_MESSAGE } from '../config/options.ts';
import { errorInfo } from '../engine/error-info.ts';
import { storedJson } from '../engine/stored-json.ts';
import type { Json } from '../job.ts';
import { Snooze, StepFailedError, TimeoutError, ValidationError } from '../errors.ts';
import { backoffDelay, classifyError, type RetryPolicy } from '../policies/retry.ts';
import { ReplayEnd } from './history.ts';
import { checkStepOptions } from './options.ts';
import { stepKey, type RunEnv, type StepInfo } from './run-env.ts';

export interface StepOptions<T> {
  /** This step's retry policy (default: the workflow's). */
  retry?: Partial<RetryPolicy>;
  /** One attempt of `fn` may take this long; past it the attempt fails (and is retried). */
  timeoutMs?: number;
  /** A circuit breaker guarding the call: a name (`ctx.breaker(name)`) or a guard. An open breaker delays the step without using its attempts. */
  breaker?: string | BreakerGuard;
  /** Undoes the step when the workflow fails for good; receives the step's recorded result. */
  compensate?: (result: T, info: StepInfo) => unknown;
}

/** The history position of each StepFailedError a step threw: a redrive retries only the one that failed the run. */
const failedAt = new WeakMap<object, number>();
export const failedPosition = (err: unknown): number | undefined => (typeof err === 'object' && err ? failedAt.get(err) : undefined);
const stepFailed = (seq: number, err: StepFailedError) => (failedAt.set(err, seq), err);

export function checkStepName(name: unknown, what = 'step name'): asserts name is string {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > 200) {
    throw new ValidationError(what, 'must be a non-empty string of at most 200 characters (it identifies the step in the history)');
  }
  // PostgreSQL refuses them in text where SQLite keeps them: refused on every store alike, before anything is written.
  if (!storable(name)) throw new ValidationError(what, UNSTORABLE_MESSAGE);
}

export async function runStep<T>(env: RunEnv, name: string, fn: (info: StepInfo) => Promise<T> | T, opts: StepOptions<T> = {}): Promise<T> {
  checkStepName(name);
  if (typeof fn !== 'function') throw new ValidationError(`step "${name}"`, 'needs a function to run');
  checkStepOptions(name, opts);
  const h = env.history;
  const { seq, record } = h.next('step', name);
  const policy: RetryPolicy = { ...env.retry, ...opts.retry };
  const register = (result: unknown) => {
    if (opts.compensate) env.compensations.push({ seq, name, result: result as never, fn: opts.compensate, retry: policy });
  };
  if (record?.status === 'completed') {
    register(record.result);
    return record.result as T;
  }
  if (record?.status === 'failed') throw stepFailed(seq, new StepFailedError(name, record.attempts, record.error ?? 'failed'));
  if (h.replayOnly) throw new ReplayEnd();
  // The run may wake before this step's retry time (a signal, a child, a sibling's timer, an operator): the
  // step sleeps on until then. Its retry time is recorded, so a replay after a crash keeps it too.
  if (record?.status === 'retrying' && record.wakeAt != null && h.now() < record.wakeAt) {
    throw new Snooze(record.wakeAt, `step "${name}" waits for its retry at ${new Date(record.wakeAt).toISOString()}`);
  }

  const base = { ...(record ?? h.fresh(seq, 'step', name)), wakeAt: null };
  const attempts = base.attempts + 1;
  await h.save({ ...base, status: 'running', attempts });
  const info: StepInfo = { attempt: attempts, idempotencyKey: stepKey(env, seq, name), signal: env.ctx.signal };
  let value: unknown;
  try {
    const call = () => withTimeout(Promise.resolve().then(() => fn(info)), opts.timeoutMs);
    const returned = await inStepSpan(env, name, attempts, () => (opts.breaker ? guardOf(env, opts.breaker).run(call) : call()));
    // JSON round trip, so the first execution returns exactly what a replay will; one a store cannot keep fails the step for good.
    value = storedJson(returned, `the result of step "${name}"`);
  } catch (err) {
    // The attempt of the whole workflow ended (lease lost, job timeout, shutdown): not this step's failure.
    if (env.ctx.signal.aborted) throw env.ctx.signal.reason;
    if (err instanceof Snooze) throw err;
    const now = h.now();
    const e = err as { code?: unknown; retryAfterMs?: unknown };
    if (e?.code === 'breaker_open') {
      const retryAt = Math.ceil(now + (typeof e.retryAfterMs === 'number' ? e.retryAfterMs : policy.baseMs));
      await h.save({ ...base, status: 'retrying', attempts: base.attempts, wakeAt: retryAt });
      throw new Snooze(retryAt, `step "${name}": breaker open`);
    }
    const cls = classifyError(err, env.classify);
    const error = errorInfo(err, cls.kind, env.type, env.secrets);
    if (cls.kind === 'permanent' || attempts >= policy.maxAttempts) {
      await h.save({ ...base, status: 'failed', attempts, error, finishedAt: now });
      throw stepFailed(seq, new StepFailedError(name, attempts, err));
    }
    // Whole milliseconds: the stores keep integers.
    const retryAt = Math.ceil(now + (cls.retryAfterMs ?? backoffDelay(policy, attempts)));
    await h.save({ ...base, status: 'retrying', attempts, error, wakeAt: retryAt });
    throw new Snooze(retryAt, `step "${name}" attempt ${attempts} of ${policy.maxAttempts} failed: ${error.message}`);
  }
  const stored = await h.save({ ...base, status: 'completed', attempts, result: value as Json, error: null, finishedAt: h.now() });
  register(stored.result);
  return stored.result as T;
}

function guardOf(env: RunEnv, breaker: string | BreakerGuard): BreakerGuard {
  return typeof breaker === 'string' ? env.ctx.breaker(breaker) : breaker;
}

function withTimeout<T>(p: Promise<T>, ms: number | undefined): Promise<T> {
  if (!ms) return p;
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(ms)), ms))),
  ]);
}

/**
 * Each step attempt is a child span of the workflow attempt's span (the active
 * context while the handler runs). With no OpenTelemetry SDK registered it is a no-op.
 */
function inStepSpan<T>(env: RunEnv, name: string, attempt: number, run: () => Promise<T>): Promise<T> {
  const attributes = { 'job.id': env.ctx.jobId, 'job.type': env.ctx.type, 'workflow.step': name, 'workflow.step.attempt': attempt };
  return trace.getTracer('rebound').startActiveSpan(`step ${name}`, { attributes }, async (span) => {
    try {
      const value = await run();
      span.setAttribute('outcome', 'completed');
      return value;
    } catch (err) {
      span.setAttributes({ outcome: 'failed', 'error.class': (err as Error)?.name ?? 'Error' });
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorInfo(err, 'transient', env.type, env.secrets).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
