/**
 * What `ctx.spawn` takes, on both stores: options a child cannot take from its parent (its own idempotency
 * key, a parent, a caller's transaction) or that `spawn` does not know are refused for good with a
 * ValidationError naming the field, before any child is enqueued, instead of being dropped or obeyed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('ctx.spawn options on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const open = async (jobs: JobDefinition[]) => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs });
    rebound.work({ concurrency: 4, pollIntervalMs: 20 });
    return rebound;
  };
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const finished = (id: string) =>
    waitFor(async () => {
      const j = await rebound.getJob(id);
      return j && ['completed', 'dead', 'cancelled', 'compensated'].includes(j.state) ? j : null;
    }) as Promise<Job>;

  it('an option spawn does not take is refused for good, naming it, and no child is enqueued', async () => {
    const child = defineJob('child', { handler: () => 'ok' });
    const wf = defineWorkflow('parent', {
      run: async (ctx, input: { opts: Record<string, unknown> }) => {
        const c = await ctx.spawn('child', {}, input.opts as never);
        return (await ctx.join([c]))[0].state;
      },
    });
    const r = await open([child, wf]);
    const cases: [Record<string, unknown>, string][] = [
      [{ idempotencyKey: 'mine' }, 'spawn("child").opts.idempotencyKey'],
      [{ parentId: '1' }, 'spawn("child").opts.parentId'],
      [{ runAt: 0 }, 'spawn("child").opts.runAt'],
      [{ delay: 5 }, 'spawn("child").opts.delay'],
    ];
    for (const [opts, field] of cases) {
      const { id } = await r.enqueue('parent', { opts });
      const job = await finished(id);
      expect(job).toMatchObject({ state: 'dead', deadReason: 'permanent', lastError: { name: 'ValidationError' } });
      expect(job.lastError?.message).toContain(field);
    }
    expect(await r.listJobs({ type: 'child' })).toEqual([]);
    // The options spawn takes still work.
    const ok = await r.enqueue('parent', { opts: { queue: 'default', priority: 1, maxAttempts: 2, delayMs: 0, orderingKey: 'k' } });
    expect(await finished(ok.id)).toMatchObject({ state: 'completed', result: 'completed' });
  });
});
