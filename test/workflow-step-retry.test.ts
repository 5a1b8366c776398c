/**
 * A step waiting for its retry keeps a retry time of its own, recorded in the
 * run's history: a run woken early for another reason (a signal, a sibling's
 * retry) does not retry the step before then, a replay by another client after
 * a restart keeps it too, and the run sleeps until the earliest time any of its
 * positions is due. The clients' clock is moved forward instead of sleeping.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, RetryableError, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const MINUTE = 60_000;

describe.each(storeKinds)('step retry times on %s', (kind) => {
  let url: string;
  let ahead = 0;
  const clients: Rebound[] = [];
  const open = async (jobs: JobDefinition[]) => {
    const r = await createRebound({ store: url, jobs, now: () => Date.now() + ahead });
    clients.push(r);
    return r;
  };
  beforeEach(() => {
    url = freshStoreUrl(kind);
    ahead = 0;
  });
  afterEach(async () => {
    for (const r of clients.splice(0)) await r.close();
    await dropStore(url);
  });

  const stepOf = async (r: Rebound, id: string, name: string) => (await r.workflow(id).catch(() => null))?.steps.find((s) => s.name === name);
  /** The job once its execution has ended: asleep again, or finished. */
  const settledJob = (r: Rebound, id: string) =>
    waitFor(async () => {
      const j = await r.getJob(id);
      return j && ['scheduled', 'completed', 'dead'].includes(j.state) ? j : null;
    }) as Promise<Job>;

  it('a step waiting for its retry does not run when a signal wakes the run early, even replayed by another client after a restart', async () => {
    const charges: number[] = [];
    const wf = defineWorkflow('approve-and-charge', {
      run: async (ctx) => {
        const [charge, approval] = await Promise.all([
          ctx.step('charge', (info) => {
            charges.push(info.attempt);
            if (info.attempt === 1) throw new RetryableError('payments down', { retryAfterMs: 30 * MINUTE });
            return 'charged';
          }),
          ctx.waitFor('approved'),
        ]);
        return { charge, approval };
      },
    });
    const first = await open([wf]);
    const { id } = await first.enqueue('approve-and-charge', {});
    const w = first.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await first.getJob(id))?.state === 'scheduled' && (await stepOf(first, id, 'charge'))?.status === 'retrying');
    const retryAt = (await first.getJob(id))!.runAt;
    await w.stop();

    // Another client, as after a restart, holds nothing of the first execution in memory.
    const second = await open([wf]);
    second.work({ pollIntervalMs: 20 });
    expect((await second.signal(id, 'approved', { by: 'ops' })).woke).toBe(true);
    await waitFor(async () => (await stepOf(second, id, 'approved'))?.status === 'completed');
    const woken = await settledJob(second, id);
    expect(charges).toEqual([1]);
    expect(woken.state).toBe('scheduled');
    // The run sleeps again until the step's recorded retry time, the earliest of what it waits for (the signal's own look is hourly).
    expect(woken.runAt).toBe(retryAt);
    expect(await stepOf(second, id, 'charge')).toMatchObject({ status: 'retrying', attempts: 1, wakeAt: retryAt });

    ahead = 31 * MINUTE;
    const done = await waitFor(async () => ((await second.getJob(id))?.state === 'completed' ? second.getJob(id) : null));
    expect(done?.result).toEqual({ charge: 'charged', approval: { by: 'ops' } });
    expect(charges).toEqual([1, 2]);
  });

  it('parallel steps each wait for their own retry time: the earlier one retrying does not retry the later one', async () => {
    const calls: Record<string, number[]> = { soon: [], later: [] };
    const failOnce = (name: string, retryAfterMs: number) => (info: { attempt: number }) => {
      calls[name].push(info.attempt);
      if (info.attempt === 1) throw new RetryableError(`${name} busy`, { retryAfterMs });
      return name;
    };
    const wf = defineWorkflow('two-services', {
      run: (ctx) => Promise.all([ctx.step('soon', failOnce('soon', MINUTE)), ctx.step('later', failOnce('later', 60 * MINUTE))]),
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('two-services', {});
    r.work({ pollIntervalMs: 20 });
    await waitFor(async () => {
      const [soon, later] = [await stepOf(r, id, 'soon'), await stepOf(r, id, 'later')];
      return soon?.status === 'retrying' && later?.status === 'retrying' && (await r.getJob(id))?.state === 'scheduled';
    });
    const firstWake = (await r.getJob(id))!.runAt;

    ahead = 2 * MINUTE;
    await waitFor(async () => (await stepOf(r, id, 'soon'))?.status === 'completed');
    const woken = await settledJob(r, id);
    expect(calls).toEqual({ soon: [1, 2], later: [1] });
    expect(woken.state).toBe('scheduled');
    // Each step's retry time is on its record; the run slept until the earlier one, then until the later one.
    const laterAt = (await stepOf(r, id, 'later'))!.wakeAt;
    expect(woken.runAt).toBe(laterAt);
    expect(firstWake).toBeLessThan(laterAt!);

    ahead = 61 * MINUTE;
    const done = await waitFor(async () => ((await r.getJob(id))?.state === 'completed' ? r.getJob(id) : null));
    expect(done?.result).toEqual(['soon', 'later']);
    expect(calls).toEqual({ soon: [1, 2], later: [1, 2] });
  });
});
