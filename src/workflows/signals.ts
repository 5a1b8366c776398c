/**
 * `ctx.waitFor(name, { timeoutMs })`: the workflow sleeps (a Snooze: no worker,
 * no lease) until `rebound.signal(jobId, name, payload)` delivers a signal,
 * which wakes it at once. The delivered payload, or the timeout, is recorded at
 * this position, so a replay returns the same payload (or throws the same timeout).
 * Signals sent before the workflow waits are kept and delivered in order.
 */
import { Snooze, SignalTimeoutError } from '../errors.ts';
import type { Json } from '../job.ts';
import { ReplayEnd } from './history.ts';
import type { RunEnv } from './run-env.ts';
import { checkWaitOptions } from './options.ts';
import { checkStepName } from './step.ts';

export interface WaitOptions {
  /** Give up after this long (from the first time the wait is reached): throws SignalTimeoutError. */
  timeoutMs?: number;
}

const SIGNAL_RECHECK_MS = 3600_000;

type Recorded = { payload: Json } | { timedOutAfterMs: number };

export async function waitFor<T = Json>(env: RunEnv, name: string, opts: WaitOptions = {}): Promise<T> {
  checkStepName(name, 'signal name');
  checkWaitOptions(name, opts);
  const h = env.history;
  const store = env.host.store.workflows;
  const { seq, record } = h.next('signal', name);
  if (record?.status === 'completed') return unwrap<T>(name, record.result as Recorded);
  if (h.replayOnly) throw new ReplayEnd();
  const now = h.now();
  const base = record ?? h.fresh(seq, 'signal', name);
  const deadline = record ? record.wakeAt : opts.timeoutMs !== undefined ? now + opts.timeoutMs : null;
  // Say what we wait for before looking, so a signal sent from now on wakes the job.
  await h.updateRun({ waiting: `signal:${name}` }, now);
  const signal = await store.takeSignal({ jobId: env.ctx.jobId, name, seq, now });
  let outcome: Recorded | null = null;
  if (signal) outcome = { payload: signal.payload };
  else if (deadline != null && now >= deadline) outcome = { timedOutAfterMs: deadline - base.startedAt };
  if (outcome) {
    await h.save({ ...base, wakeAt: deadline, status: 'completed', result: outcome as Json, finishedAt: now });
    await h.updateRun({ waiting: null }, now);
    return unwrap<T>(name, outcome);
  }
  await h.save({ ...base, wakeAt: deadline, attempts: base.attempts + 1 });
  // A signal wakes the run in the transaction that stores it (or, if it came while the run was still
  // running, in the one that puts it to sleep): the hourly look is only a safety net.
  const wakeAt = Math.min(deadline ?? Infinity, now + SIGNAL_RECHECK_MS);
  throw new Snooze(wakeAt, `waiting for signal "${name}"`);
}

function unwrap<T>(name: string, r: Recorded): T {
  if ('timedOutAfterMs' in r) throw new SignalTimeoutError(name, r.timedOutAfterMs);
  return r.payload as T;
}
