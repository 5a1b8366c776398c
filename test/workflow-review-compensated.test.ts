/**
 * A run that finished undoing (`compensated`) whose job's own final write was lost comes back to a worker, by
 * the lease running out or by a redrive of the job the rescue dead-lettered: it ends compensated again, and its
 * code does not go on forward past the failure it compensated (the cause may have gone away meanwhile).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('a compensated run that comes back on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a compensated run whose final write was lost is not run forward when it comes back, also after a redrive', async () => {
    url = freshStoreUrl(kind);
    const calls: string[] = [];
    let inventoryDown = true;
    const wf = defineWorkflow('reserve-then-ship', {
      leaseMs: 400,
      retry: { maxAttempts: 1 },
      run: async (ctx) => {
        await ctx.step('charge', () => void calls.push('charge'), { compensate: () => void calls.push('refund') });
        // Code outside a step failing on the run's last attempt: the run fails for good and compensates.
        if (inventoryDown) throw new Error('inventory service down');
        await ctx.step('ship', () => void calls.push('ship'));
        return 'shipped';
      },
    });
    rebound = await createRebound({ store: url, jobs: [wf] as JobDefinition[] });
    const r = rebound;
    // The worker's final write of the compensated job fails on each of its tries: the lease runs out.
    const completeJobs = r.store.completeJobs.bind(r.store);
    // Every try of the first execution's final write (the worker tries it a few times, then leaves it to the lease).
    let blips = 10;
    r.store.completeJobs = async (...args: Parameters<typeof completeJobs>) => {
      if (blips > 0 && (await r.workflow(args[0][0]?.id ?? '').catch(() => null))?.status === 'compensated') {
        blips--;
        throw new Error('connection reset (injected)');
      }
      return completeJobs(...args);
    };
    const { id } = await r.enqueue('reserve-then-ship', {});
    r.work({ concurrency: 1, pollIntervalMs: 20, rescueIntervalMs: 100 });
    await waitFor(async () => (await r.workflow(id).catch(() => null))?.status === 'compensated');
    inventoryDown = false;
    const back = (await waitFor(async () => {
      const j = await r.getJob(id);
      return j && ['completed', 'dead', 'compensated'].includes(j.state) ? j : null;
    })) as Job;
    expect(blips).toBeLessThan(10);
    blips = 0;
    if (back.state === 'dead') await r.redrive({ ids: [id] });
    const end = (await waitFor(async () => {
      const j = await r.getJob(id);
      return j && ['completed', 'compensated'].includes(j.state) ? j : null;
    })) as Job;
    expect(end).toMatchObject({ state: 'compensated', result: { compensated: ['charge'] } });
    expect(calls).toEqual(['charge', 'refund']);
    expect((await r.workflow(id))!.status).toBe('compensated');
  });
});
