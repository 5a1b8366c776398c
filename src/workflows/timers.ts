/**
 * `ctx.sleep(ms | Date)`: a durable timer. The wake time is recorded the first
 * time the position is reached, so a replay does not restart the timer; until
 * then the workflow sleeps as a scheduled job (a Snooze), holding no worker and no lease.
 */
import { Snooze, ValidationError } from '../errors.ts';
import { ReplayEnd } from './history.ts';
import type { RunEnv } from './run-env.ts';

export async function sleep(env: RunEnv, until: number | Date): Promise<void> {
  const h = env.history;
  const { seq, record } = h.next('sleep', 'sleep');
  if (record?.status === 'completed') return;
  if (h.replayOnly) throw new ReplayEnd();
  const now = h.now();
  let wakeAt = record?.wakeAt;
  if (wakeAt == null) {
    const t = until instanceof Date ? until.getTime() : typeof until === 'number' && until >= 0 ? now + until : NaN;
    if (!Number.isFinite(t)) throw new ValidationError('sleep', 'give a number of milliseconds (>= 0) or a Date');
    wakeAt = t;
  }
  if (now >= wakeAt) {
    await h.save({ ...(record ?? h.fresh(seq, 'sleep', 'sleep')), wakeAt, status: 'completed', finishedAt: now });
    await h.updateRun({ waiting: null }, now);
    return;
  }
  if (!record) await h.save({ ...h.fresh(seq, 'sleep', 'sleep'), wakeAt });
  await h.updateRun({ waiting: 'timer' }, now);
  throw new Snooze(wakeAt, `sleeping until ${new Date(wakeAt).toISOString()}`);
}
