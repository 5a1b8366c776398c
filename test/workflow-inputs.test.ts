/**
 * What a workflow's code may ask of `ctx`, on both stores: calls a run cannot
 * keep are refused at once with a ValidationError naming the call and the
 * field, and fail the run for good (a code bug does not get better by retrying).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, type Job, type JobDefinition, type Rebound, type WorkflowContext } from '../src/index.ts';
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

  it('ctx.sleep rounds a fractional duration up, and refuses a duration or Date beyond ten years (or an invalid Date) for good', async () => {
    const wf = defineWorkflow('nap', {
      run: async (ctx, input: { ms?: number; at?: number | string }) => {
        await ctx.sleep(input.ms ?? new Date(input.at!));
        return 'woke';
      },
    });
    const r = await open([wf]);
    const fractional = await r.enqueue('nap', { ms: 10.5 });
    const far = await r.enqueue('nap', { ms: 1e16 });
    const farDate = await r.enqueue('nap', { at: Date.now() + 11 * 365 * 24 * 3600_000 });
    const badDate = await r.enqueue('nap', { at: 'not a date' });
    expect(await finished(fractional.id)).toMatchObject({ state: 'completed', result: 'woke' });
    const refused = { state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { name: 'ValidationError' } };
    expect(await finished(far.id)).toMatchObject({ ...refused, lastError: { message: expect.stringContaining('sleep: give milliseconds from 0 to') } });
    expect(await finished(farDate.id)).toMatchObject({ ...refused, lastError: { message: expect.stringContaining('is more than ten years away') } });
    expect(await finished(badDate.id)).toMatchObject({ ...refused, lastError: { message: 'sleep: got an invalid Date' } });
  });

  it('bad options of ctx.step and ctx.waitFor are refused for good, naming the field, with the nearest option for a typo', async () => {
    let calls = 0;
    const charge = () => (calls++, 'ok');
    const cases: Record<string, (ctx: WorkflowContext) => Promise<unknown>> = {
      'step("charge").retry.maxAttemps: unknown option; did you mean retry.maxAttempts?': (ctx) => ctx.step('charge', charge, { retry: { maxAttemps: 1 } as never }),
      'step("charge").retry.baseMs: must be whole milliseconds': (ctx) => ctx.step('charge', charge, { retry: { baseMs: 'abc' as never } }),
      'step("charge").timeoutMs: must be whole milliseconds from 1': (ctx) => ctx.step('charge', charge, { timeoutMs: -1 }),
      'step("charge").compensate: must be a function': (ctx) => ctx.step('charge', charge, { compensate: 'refund' as never }),
      'step("charge").breaker: must be a breaker name, or a guard': (ctx) => ctx.step('charge', charge, { breaker: {} as never }),
      'step("charge").retries: unknown option; the options are retry, timeoutMs, breaker, compensate': (ctx) => ctx.step('charge', charge, { retries: 3 } as never),
      'waitFor("approve").timeout: unknown option; did you mean timeoutMs?': (ctx) => ctx.waitFor('approve', { timeout: 200 } as never),
      'waitFor("approve").timeoutMs: must be whole milliseconds from 0 to': (ctx) => ctx.waitFor('approve', { timeoutMs: 1e16 }),
    };
    const wf = defineWorkflow('opts', { run: (ctx, input: { message: string }) => cases[input.message](ctx) });
    const r = await open([wf]);
    const jobs = await Promise.all(Object.keys(cases).map((message) => r.enqueue('opts', { message })));
    for (const [i, message] of Object.keys(cases).entries()) {
      const job = await finished(jobs[i].id);
      expect(job).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { name: 'ValidationError' } });
      expect(job.lastError?.message).toContain(message);
    }
    expect(calls).toBe(0);
  });
});
