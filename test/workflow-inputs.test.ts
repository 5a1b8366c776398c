/**
 * What a workflow's code may ask of `ctx`, on both stores: calls a run cannot
 * keep are refused at once with a ValidationError naming the call and the
 * field, and fail the run for good (a code bug does not get better by retrying).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('workflow calls on %s', (kind) => {
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

  it('two durable waits at once (a race of waitFor and sleep) are refused, naming the call and saying to use timeoutMs', async () => {
    const wf = defineWorkflow('race', {
      run: async (ctx, input: { how: string }) => {
        if (input.how === 'race') return Promise.race([ctx.waitFor('approve'), ctx.sleep(60_000).then(() => 'timed out')]);
        if (input.how === 'all') return Promise.all([ctx.waitFor('a'), ctx.waitFor('b')]);
        // One after another is fine, also when a replay finds the first wait recorded.
        const first = await ctx.waitFor('a', { timeoutMs: 0 }).catch(() => 'no a');
        await ctx.sleep(1);
        return [first, await ctx.waitFor('b', { timeoutMs: 0 }).catch(() => 'no b')];
      },
    });
    const r = await open([wf]);
    const race = await r.enqueue('race', { how: 'race' });
    const all = await r.enqueue('race', { how: 'all' });
    const inTurn = await r.enqueue('race', { how: 'in turn' });
    const raced = await finished(race.id);
    expect(raced).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { name: 'ValidationError' } });
    expect(raced.lastError?.message).toContain('ctx.sleep: called while ctx.waitFor("approve") is still pending');
    expect(raced.lastError?.message).toContain('ctx.waitFor(name, { timeoutMs })');
    expect(await r.workflow(race.id)).toMatchObject({ status: 'failed', waiting: null });
    expect((await finished(all.id)).lastError?.message).toContain('ctx.waitFor("b"): called while ctx.waitFor("a") is still pending');
    expect(await finished(inTurn.id)).toMatchObject({ state: 'completed', result: ['no a', 'no b'] });
  });
});
