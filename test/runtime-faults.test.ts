/**
 * The worker when the store, or a plugin, fails it at the edges of a job's life: the drain check, the start of an
 * attempt, the release on stop, the heartbeat. On both stores; the store's failures are thrown by the test's own
 * wrapper around the real store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type Rebound } from '../src/index.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/store.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

/** Makes the store's `method` throw on its next `times` calls (those `when` picks), then work again. */
function failNext<K extends 'countJobs' | 'releaseJobs' | 'heartbeatJobs'>(store: Store, method: K, times: number, when: (...args: Parameters<Store[K]>) => boolean = () => true) {
  const real = (store[method] as (...args: unknown[]) => Promise<unknown>).bind(store);
  const state = { left: times };
  (store as unknown as Record<string, unknown>)[method] = async (...args: Parameters<Store[K]>) => {
    if (state.left > 0 && when(...args)) {
      state.left--;
      throw new Error(`injected: ${method} failed`);
    }
    return real(...args);
  };
  return state;
}

describe.each(storeKinds)('runtime faults on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const open = async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: await openStore(url) });
    return rebound;
  };

  /** A job on a 300 ms lease whose handler waits for its abort; `letGo` runs it and checks it is let go as a lost lease. */
  const slowJobWithShortLease = async () => {
    const r = await open();
    let aborted: unknown = null;
    r.define(
      defineJob('slow', {
        leaseMs: 300,
        retry: { maxAttempts: 1 },
        handler: async (_p, ctx) => {
          await new Promise((res) => ctx.signal.addEventListener('abort', res));
          aborted = ctx.signal.reason;
        },
      }),
    );
    const { id } = await r.enqueue('slow', {});
    const letGo = async () => {
      const lost: string[] = [];
      r.events.on('job:lease_lost', (e) => lost.push(e.job.id));
      const worker = r.work({ pollIntervalMs: 10, rescueIntervalMs: 60_000 });
      await waitFor(() => aborted !== null);
      expect((aborted as Error).name).toBe('LeaseLostError');
      expect(lost).toEqual([id]);
      await worker.stop();
    };
    return { r, id, letGo };
  };

  it('a draining worker whose look at the queue fails looks again and drains, instead of stopping its claims for good', async () => {
    const r = await open();
    r.define(defineJob('a', { handler: async () => 'done' }));
    const { id } = await r.enqueue('a', {});
    const fault = failNext(r.store, 'countJobs', 1);
    const errors: string[] = [];
    r.events.on('worker:error', (e) => errors.push(e.during));
    const worker = r.work({ drain: true, pollIntervalMs: 10 });
    let drained = false;
    void worker.done.then(() => (drained = true));
    await waitFor(() => drained);
    expect(fault.left).toBe(0);
    expect(errors).toContain('drain check');
    expect(await r.getJob(id)).toMatchObject({ state: 'completed', result: 'done' });
  });

  it("a plugin that throws as an attempt starts fails that attempt, which is retried; its stop that throws does not hold the worker's", async () => {
    const r = await open();
    r.define(defineJob('a', { handler: async () => 'done', retry: { maxAttempts: 3, baseMs: 10, maxMs: 10 } }));
    let calls = 0;
    r.use({
      name: 'flaky',
      extendContext() {
        if (calls++ === 0) throw new Error('plugin bug');
      },
      stop() {
        throw new Error('plugin stop bug');
      },
    });
    const errors: string[] = [];
    r.events.on('worker:error', (e) => errors.push(e.during));
    const { id } = await r.enqueue('a', {});
    const worker = r.work({ pollIntervalMs: 10 });
    await waitFor(async () => (await r.getJob(id))?.state === 'completed');
    const { job, history } = await r.inspect(id);
    expect(job).toMatchObject({ attempt: 2, result: 'done' });
    expect(history.find((h) => h.kind === 'retry_scheduled')?.data).toMatchObject({ error: { message: 'plugin bug' } });
    let stopped = false;
    void worker.stop().then(() => (stopped = true));
    await waitFor(() => stopped);
    expect(errors).toContain('stop flaky');
  });

  it('a release on stop that the store fails once is tried again: the jobs are back at once, uncharged, not left to their leases', async () => {
    const r = await open();
    let started = 0;
    r.define(
      defineJob('long', {
        handler: async (_p, ctx) => {
          started++;
          await new Promise((res) => ctx.signal.addEventListener('abort', res));
        },
      }),
    );
    const ids = [(await r.enqueue('long', {})).id, (await r.enqueue('long', {})).id];
    const worker = r.work({ concurrency: 2, pollIntervalMs: 10 });
    await waitFor(() => started === 2);
    const fault = failNext(r.store, 'releaseJobs', 1, (items) => items.length > 0);
    await worker.stop({ graceMs: 20 });
    expect(fault.left).toBe(0);
    for (const id of ids) expect(await r.getJob(id)).toMatchObject({ state: 'available', attempt: 0, leaseExpiresAt: null });
  });

  it("a job whose heartbeats fail until its lease lapses is let go: its signal is aborted as a lost lease, as another worker's rescue may run it", async () => {
    const { r, letGo } = await slowJobWithShortLease();
    // This worker alone cannot reach the store for its renewals.
    failNext(r.store, 'heartbeatJobs', Infinity);
    await letGo();
  });

  it('a job whose heartbeats hang until its lease lapses is let go the same way: no answer in a heartbeat period counts as a failure', async () => {
    const { r, letGo } = await slowJobWithShortLease();
    // The store never answers this worker's renewals (a connection to it that hangs).
    r.store.heartbeatJobs = () => new Promise(() => {});
    await letGo();
  });
});
