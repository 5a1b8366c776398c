/**
 * `ctx.sleep(ms | Date)`: a durable timer. The wake time is recorded the first
 * time the position is reached, so a replay does not restart the timer; until
 * then the workflow sleeps as a scheduled job (a Snooze), holding no worker and no lease.
 */
import { MAX_DURATION_MS } from '../config/options.ts';
import { Snooze, ValidationError } from '../errors.ts';
import { ReplayEnd } from './history.ts';
import type { RunEnv } from './run-env.ts';

export async function sleep(env: RunEnv, until: number | Date): Promise<void> {
  const h = env.history;
  const { seq, record } = h.next('sleep', 'sleep');
  if (record?.status === 'completed') return;
  if (h.replayOnly) throw new ReplayEnd();
  const now = h.now();
  const wakeAt = record?.wakeAt ?? wakeTime(until, now);
  if (now >= wakeAt) {
    await h.save({ ...(record ?? h.fresh(seq, 'sleep', 'sleep')), wakeAt, status: 'completed', finishedAt: now });
    await h.updateRun({ waiting: null }, now);
    return;
  }
  if (!record) await h.save({ ...h.fresh(seq, 'sleep', 'sleep'), wakeAt });
  await h.updateRun({ waiting: 'timer' }, now);
  throw new Snooze(wakeAt, `sleeping until ${new Date(wakeAt).toISOString()}`);
}

/** Whole milliseconds (stores keep integers), at most ten years ahead (a far one would not be a valid Date). */
function wakeTime(until: number | Date, now: number): number {
  if (until instanceof Date) {
    const t = until.getTime();
    if (Number.isNaN(t)) throw new ValidationError('sleep', 'got an invalid Date');
    if (t - now > MAX_DURATION_MS) throw new ValidationError('sleep', `${until.toISOString()} is more than ten years away`);
    return t;
  }
  if (typeof until !== 'number' || !(until >= 0 && until <= MAX_DURATION_MS)) {
    throw new ValidationError('sleep', `give milliseconds from 0 to ${MAX_DURATION_MS} (ten years), or a Date`);
  }
  return now + Math.ceil(until);
}
