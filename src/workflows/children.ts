/**
 * Child jobs. `ctx.spawn(type, payload)` enqueues a child whose parentId is the
 * workflow and whose idempotency key comes from the workflow and the history
 * position, so a replay (even after a crash between the enqueue and its
 * record) never spawns twice. `ctx.join(children)` sleeps, holding no worker,
 * until every child has finished; a finishing child wakes the parent at once.
 */
import { Snooze, ValidationError } from '../errors.ts';
import type { EnqueueOptions } from '../engine/enqueue-input.ts';
import { FINAL_STATES, type Json, type JobState } from '../job.ts';
import { ReplayEnd } from './history.ts';
import { checkSpawnOptions } from './options.ts';
import { recheckDelay } from './recheck.ts';
import type { RunEnv } from './run-env.ts';

export interface ChildRef {
  id: string;
  type: string;
}

export interface ChildOutcome extends ChildRef {
  state: JobState;
  result: Json | null;
  /** The child's last error message, when it did not complete. */
  error: string | null;
}

export type SpawnOptions = Pick<EnqueueOptions, 'queue' | 'priority' | 'maxAttempts' | 'delayMs' | 'orderingKey'>;

export async function spawn(env: RunEnv, type: string, payload: unknown, opts?: SpawnOptions): Promise<ChildRef> {
  if (typeof type !== 'string' || type.length === 0) throw new ValidationError('spawn.type', 'must be a job type');
  checkSpawnOptions(type, opts);
  const h = env.history;
  const { seq, record } = h.next('spawn', type);
  if (record?.status === 'completed') return { id: (record.result as { id: string }).id, type };
  if (h.replayOnly) throw new ReplayEnd();
  const { id } = await env.host.enqueue(type, payload, {
    ...opts,
    parentId: env.ctx.jobId,
    idempotencyKey: `rebound:wf:${env.ctx.jobId}:${seq}`,
  });
  await h.save({ ...(record ?? h.fresh(seq, 'spawn', type)), status: 'completed', attempts: 1, result: { id }, finishedAt: h.now() });
  return { id, type };
}

export async function join(env: RunEnv, children: ChildRef[]): Promise<ChildOutcome[]> {
  if (!Array.isArray(children) || children.some((c) => typeof c?.id !== 'string')) {
    throw new ValidationError('join', 'give the array of children that ctx.spawn returned');
  }
  const h = env.history;
  const store = env.host.store;
  const { seq, record } = h.next('join', `${children.length}`);
  if (record?.status === 'completed') return record.result as unknown as ChildOutcome[];
  if (h.replayOnly) throw new ReplayEnd();
  const now = h.now();
  const base = record ?? h.fresh(seq, 'join', `${children.length}`);
  // Say what we wait for before looking, so a child finishing from now on wakes us.
  await h.updateRun({ waiting: 'children' }, now);
  const ids = children.map((c) => c.id);
  const jobs = new Map((ids.length ? await store.listJobs({ ids, limit: ids.length }) : []).map((j) => [j.id, j]));
  const open = ids.filter((id) => !FINAL_STATES.includes(jobs.get(id)?.state ?? 'completed'));
  if (open.length > 0) {
    await h.save({ ...base, attempts: base.attempts + 1 });
    throw new Snooze(now + recheckDelay(base.attempts), `waiting for ${open.length} of ${ids.length} children`);
  }
  const outcomes: ChildOutcome[] = children.map((c) => {
    const j = jobs.get(c.id);
    return {
      id: c.id,
      type: j?.type ?? c.type,
      state: j?.state ?? 'cancelled',
      result: j?.result ?? null,
      error: j && j.state !== 'completed' ? (j.lastError?.message ?? null) : null,
    };
  });
  await h.save({ ...base, status: 'completed', result: outcomes as unknown as Json, finishedAt: now });
  await h.updateRun({ waiting: null }, now);
  return outcomes;
}
