/**
 * Backpressure and lag on both stores: a queue at its maximum depth refuses
 * enqueues with a clear error (or waits for room when asked), and queueStats
 * reports depth, age, rates and drain time, warning when the backlog will not drain.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, QueueFullError, type Rebound, type ReboundEvents } from '../src/index.ts';
import { runCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

const task = defineJob('task', { queue: 'bulk', handler: async () => sleep(5) });

describe.each(storeKinds)('backpressure on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a queue at its maximum depth refuses enqueues with QueueFullError, and stores nothing more', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [task], queues: { bulk: { maxDepth: 3 } } });
    await rebound.enqueueMany([0, 1].map(() => ({ type: 'task', payload: {} })));
    await rebound.enqueue('task', {});
    const err = await rebound.enqueue('task', {}).catch((e) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err).toMatchObject({ code: 'queue_full', queue: 'bulk', depth: 3, maxDepth: 3 });
    expect(err.retryAfterMs).toBeGreaterThan(0);
    expect(err.message).toContain('queue "bulk" is full (3 waiting jobs, max 3)');
    await expect(rebound.enqueueMany([{ type: 'task', payload: {} }])).rejects.toBeInstanceOf(QueueFullError);
    // Other queues are not limited.
    await rebound.enqueue('task', {}, { queue: 'other' });
    expect(await rebound.countJobs({ queue: 'bulk' })).toBe(3);
  });

  it('concurrent enqueues of one client never take more room than the queue has, nor refused ones any', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [task], queues: { bulk: { maxDepth: 10 } } });
    const burst = (n: number, make: (i: number) => Promise<unknown>) => Promise.allSettled(Array.from({ length: n }, (_, i) => make(i)));
    const first = await burst(50, (i) => rebound.enqueue('task', { i }));
    expect(first.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(first.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof QueueFullError)).toBe(true);
    expect(await rebound.countJobs({ queue: 'bulk' })).toBe(10);
    // Room made by a cancel is taken once the next store read sees it; a refused call (a conflicting key) gives its room back.
    const [victim] = await rebound.listJobs({ queue: 'bulk', limit: 1 });
    await rebound.cancel(victim.id);
    await sleep(150);
    const second = await burst(5, (i) => rebound.enqueueMany([{ type: 'task', payload: { i } }]));
    expect(second.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await rebound.countJobs({ queue: 'bulk', state: 'available' })).toBe(10);
    const [held] = await rebound.listJobs({ queue: 'bulk', state: 'available', limit: 1 });
    await rebound.cancel(held.id);
    await rebound.enqueue('task', { keyed: 1 }, { queue: 'other', idempotencyKey: 'k' });
    await sleep(150);
    await expect(rebound.enqueueMany([{ type: 'task', payload: { keyed: 2 }, opts: { idempotencyKey: 'k' } }])).rejects.toMatchObject({ code: 'idempotency_conflict' });
    await rebound.enqueue('task', { last: true });
    await expect(rebound.enqueue('task', {})).rejects.toBeInstanceOf(QueueFullError);
    expect(await rebound.countJobs({ queue: 'bulk', state: 'available' })).toBe(10);
  });

  it('with waitForRoomMs, an enqueue into a full queue waits until workers make room', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [task], queues: { bulk: { maxDepth: 2 } } });
    await rebound.enqueueMany([0, 1].map(() => ({ type: 'task', payload: {} })));
    const waiting = rebound.enqueue('task', { late: true }, { waitForRoomMs: 20_000 });
    await sleep(300);
    expect(await rebound.countJobs({ queue: 'bulk' })).toBe(2);
    const worker = rebound.work({ pollIntervalMs: 20 });
    const result = await waiting;
    expect(result.job.payload).toEqual({ late: true });
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 3);
    await worker.stop();
    await expect(rebound.enqueue('task', {}, { waitForRoomMs: -1 })).rejects.toMatchObject({ field: 'options.waitForRoomMs' });
    expect(() => rebound.backpressure.configure('bulk', { maxDepth: 0 })).toThrow(/queues\.bulk\.maxDepth/);
  });

  it('an enqueue that waited for room is timed from when there was room: its delay counts from then, and a key that expired meanwhile is free', async () => {
    url = freshStoreUrl(kind);
    let clock = Date.now();
    const keyed = defineJob('keyed', { queue: 'bulk', keyTtlMs: 60_000, handler: async () => 'ok' });
    rebound = await createRebound({ store: url, jobs: [task, keyed], queues: { bulk: { maxDepth: 3 } }, now: () => clock });
    // A finished job holds the key "order-1" for another minute.
    await rebound.enqueue('keyed', { v: 1 }, { idempotencyKey: 'order-1' });
    const [c] = await rebound.store.claimJobs({ workerId: 'w', queues: ['bulk'], types: ['keyed'], limit: 1, leaseMs: 60_000, now: clock });
    await rebound.store.completeJobs([{ id: c.id, token: c.leaseToken, result: 'ok' }], clock);
    const fillers = await rebound.enqueueMany([1, 2, 3].map((n) => ({ type: 'task', payload: { n } })));
    const many = rebound.enqueueMany(
      [
        { type: 'keyed', payload: { v: 2 }, opts: { idempotencyKey: 'order-1' } },
        { type: 'task', payload: { delayed: 'many' }, opts: { delayMs: 30_000 } },
      ],
      { waitForRoomMs: 600_000 },
    );
    const one = rebound.enqueue('task', { delayed: 'one' }, { delayMs: 30_000, waitForRoomMs: 600_000 });
    // Two minutes pass while the queue is full; then there is room for all three.
    clock += 120_000;
    for (const f of fillers) await rebound.cancel(f.id);
    const [fresh, delayed] = await many;
    expect(fresh).toMatchObject({ deduplicated: false, job: { payload: { v: 2 } } });
    expect(delayed.job.runAt).toBe(clock + 30_000);
    expect((await one).job.runAt).toBe(clock + 30_000);
  });

  it('queueStats reports depth, oldest age, rates and drain time, and warns when arrivals outpace completions', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [task], queues: { bulk: { maxDepth: 1000 } } });
    const warnings: ReboundEvents['queue:backlog_growing'][] = [];
    rebound.events.on('queue:backlog_growing', (e) => warnings.push(e));
    await rebound.enqueueMany(Array.from({ length: 12 }, () => ({ type: 'task', payload: {} })));
    await rebound.enqueue('task', {}, { delayMs: 60_000 });
    await sleep(50);
    const [bulk] = await rebound.queueStats({ windowMs: 10_000 });
    expect(bulk).toMatchObject({ queue: 'bulk', depth: 12, scheduled: 1, running: 0, maxDepth: 1000, completionsPerSec: 0, projectedDrainMs: null });
    expect(bulk.arrivalsPerSec).toBeCloseTo(1.3, 5);
    expect(bulk.oldestWaitingMs).toBeGreaterThanOrEqual(50);
    expect(bulk.warning).toContain('will not drain');
    expect(warnings).toEqual([expect.objectContaining({ queue: 'bulk', depth: 12 })]);

    const worker = rebound.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 12);
    await worker.stop();
    const [after] = await rebound.queueStats({ windowMs: 10_000 });
    expect(after).toMatchObject({ depth: 0, scheduled: 1, oldestWaitingMs: null, projectedDrainMs: 0, warning: null });
    expect(after.completionsPerSec).toBeCloseTo(1.2, 5);
    await expect(rebound.queueStats({ windowMs: 5 })).rejects.toMatchObject({ field: 'windowMs' });
  });

  it('rebound queues prints depth and lag per queue', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [task] });
    await rebound.enqueueMany([0, 1, 2].map(() => ({ type: 'task', payload: {} })));
    const out = await runCli(['--json', '--store', url, 'queues', '--window', '10000']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual([expect.objectContaining({ queue: 'bulk', depth: 3, windowMs: 10_000, projectedDrainMs: null })]);
    const table = await runCli(['--store', url, 'queues']);
    expect(table.stdout).toMatch(/^QUEUE\s+DEPTH/);
    expect(table.stdout).toContain('never');
    const bad = await runCli(['--store', url, 'queues', '--window', '5']);
    expect(bad).toMatchObject({ code: 2 });
  });
});
