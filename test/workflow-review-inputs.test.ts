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

describe.each(storeKinds)('names and payloads a store cannot keep on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a signal whose name or payload holds U+0000 or a lone surrogate is refused with a ValidationError naming it, on every store alike', async () => {
    url = freshStoreUrl(kind);
    const wf = defineWorkflow('approval', { run: (ctx) => ctx.waitFor('approve') });
    rebound = await createRebound({ store: url, jobs: [wf] });
    const { id } = await rebound.enqueue('approval', {});
    await expect(rebound.signal(id, 'approve', { note: 'a\u0000b' })).rejects.toMatchObject({ name: 'ValidationError', field: 'payload' });
    await expect(rebound.signal(id, 'approve', ['\uD800'])).rejects.toMatchObject({ name: 'ValidationError', field: 'payload' });
    await expect(rebound.signal(id, 'ap\u0000prove', null)).rejects.toMatchObject({ name: 'ValidationError', field: 'signal name' });
    expect(await rebound.store.workflows.listSignals(id)).toEqual([]);
  });

  it('a step name holding U+0000 fails the run for good with a ValidationError, on every store alike', async () => {
    url = freshStoreUrl(kind);
    const wf = defineWorkflow('odd-name', { run: (ctx) => ctx.step('a\u0000b', () => 1) });
    rebound = await createRebound({ store: url, jobs: [wf] });
    rebound.work({ pollIntervalMs: 20 });
    const { id } = await rebound.enqueue('odd-name', {});
    const job = (await waitFor(async () => {
      const j = await rebound.getJob(id);
      return j && ['completed', 'dead'].includes(j.state) ? j : null;
    })) as Job;
    expect(job).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { name: 'ValidationError' } });
    expect(job.lastError?.message).toContain('step name');
  });
});
