/**
 * Sagas: when a workflow fails for good, the compensations of its completed
 * steps run in reverse order. Each is recorded on its step (pending, done,
 * failed) so a crash or a retry resumes with the first one not yet done; a
 * failed attempt sleeps until the step's backoff; a compensation that fails
 * for good sends the workflow to the dead letter queue as `compensation_failed`.
 */
import type { ErrorInfo } from '../job.ts';
import { errorInfo } from '../engine/error-info.ts';
import { CompensationFailedError, Snooze } from '../errors.ts';
import { backoffDelay, classifyError } from '../policies/retry.ts';
import type { EndState } from '../job.ts';
import { stepKey, type RunEnv } from './run-env.ts';

export async function compensate(env: RunEnv, cause: ErrorInfo): Promise<EndState> {
  const h = env.history;
  const todo = [...env.compensations].sort((a, b) => b.seq - a.seq);
  const undone: string[] = todo.filter((c) => h.get(c.seq)?.compensation === 'done').map((c) => c.name);
  for (const [i, c] of todo.entries()) {
    const record = h.get(c.seq)!;
    if (record.compensation === 'done') continue;
    const attempts = record.compensationAttempts + 1;
    await h.save({ ...record, compensation: 'pending', compensationAttempts: attempts });
    try {
      await c.fn(c.result, { attempt: attempts, idempotencyKey: `${stepKey(env, c.seq, c.name)}:compensate`, signal: env.ctx.signal });
    } catch (err) {
      if (env.ctx.signal.aborted) throw env.ctx.signal.reason;
      const now = h.now();
      const cls = classifyError(err, env.classify);
      const error = errorInfo(err, cls.kind, env.type, env.secrets);
      if (cls.kind === 'permanent' || attempts >= c.retry.maxAttempts) {
        await h.save({ ...h.get(c.seq)!, compensation: 'failed', compensationError: error });
        await h.updateRun({ status: 'failed', waiting: null }, now);
        const notUndone = todo.slice(i).map((t) => t.name);
        throw new CompensationFailedError(c.name, err, undone, notUndone, cause.message);
      }
      await h.save({ ...h.get(c.seq)!, compensation: 'pending', compensationError: error });
      const delay = cls.retryAfterMs ?? backoffDelay(c.retry, attempts);
      throw new Snooze(now + delay, `compensation of step "${c.name}" attempt ${attempts} failed: ${error.message}`);
    }
    await h.save({ ...h.get(c.seq)!, compensation: 'done', compensationError: null });
    undone.push(c.name);
  }
  await h.updateRun({ status: 'compensated', waiting: null }, h.now());
  return { reboundEndState: 'compensated', result: { compensated: undone, error: cause.message } };
}
