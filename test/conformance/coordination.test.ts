/**
 * Coordination storage, on every store: leases with increasing tokens, fenced
 * writes refused for a stale term, one job per schedule fire time, retention
 * that deletes exactly what the policy says and counts it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import type { ScheduleSpec } from '../../src/store/coordination.ts';
import { StaleTermError } from '../../src/errors.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';
import { jobFactory, T0 } from '../helpers/new-job.ts';

const newJob = jobFactory('tick');

const spec: ScheduleSpec = {
  name: 'billing',
  cron: '* * * * * *',
  tz: 'UTC',
  type: 'tick',
  payload: { a: 1, zz: [1, { a: 1, b: 2 }] },
  misfire: 'once',
  jitterMs: 0,
  source: 'runtime',
};

describe.each(storeKinds)('coordination store conformance: %s', (kind) => {
  let url: string;
  let store: Store;
  const open = async () => {
    url = freshStoreUrl(kind);
    store = await openStore(url);
    await store.migrate();
    return store.coordination;
  };
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  it('a lease has one holder at a time and its token increases with every acquisition', async () => {
    const c = await open();
    const a = await c.acquireLease({ name: 'L', holder: 'a', ttlMs: 1000, now: T0 });
    expect(a).toMatchObject({ holder: 'a', token: 1, expiresAt: T0 + 1000 });
    expect(await c.acquireLease({ name: 'L', holder: 'b', ttlMs: 1000, now: T0 + 999 })).toBeNull();
    expect(await c.renewLease({ name: 'L', token: 1, ttlMs: 1000, now: T0 + 500 })).toMatchObject({ expiresAt: T0 + 1500 });
    const b = await c.acquireLease({ name: 'L', holder: 'b', ttlMs: 1000, now: T0 + 1500 });
    expect(b).toMatchObject({ holder: 'b', token: 2 });
    // The stale holder can neither renew nor release.
    expect(await c.renewLease({ name: 'L', token: 1, ttlMs: 1000, now: T0 + 1600 })).toBeNull();
    expect(await c.releaseLease({ name: 'L', token: 1, now: T0 + 1600 })).toBe(false);
    expect(await c.releaseLease({ name: 'L', token: 2, now: T0 + 1600 })).toBe(true);
    // Released: free at once, and the counter keeps going up.
    expect(await c.acquireLease({ name: 'L', holder: 'a', ttlMs: 1000, now: T0 + 1601 })).toMatchObject({ token: 3 });
  });

  it('schedules: create, unchanged upsert keeps the cursor, pause and resume keep it, remove', async () => {
    const c = await open();
    expect((await c.upsertSchedule(spec, T0 + 1000, T0)).change).toBe('created');
    // Same definition (payload keys in another order): unchanged.
    const again = await c.upsertSchedule({ ...spec, payload: { zz: [1, { b: 2, a: 1 }], a: 1 } }, T0 + 9999, T0 + 5);
    expect(again.change).toBe('unchanged');
    expect(again.schedule.nextFireAt).toBe(T0 + 1000);
    expect(again.schedule.payload).toEqual({ a: 1, zz: [1, { a: 1, b: 2 }] });
    const changed = await c.upsertSchedule({ ...spec, payload: { a: 2 } }, T0 + 9999, T0 + 6);
    expect(changed).toMatchObject({ change: 'updated', schedule: { nextFireAt: T0 + 1000, version: 2 } });
    const retimed = await c.upsertSchedule({ ...spec, payload: { a: 2 }, cron: '*/5 * * * * *' }, T0 + 5000, T0 + 7);
    expect(retimed.schedule).toMatchObject({ nextFireAt: T0 + 5000, version: 3 });
    expect(await c.setSchedulePaused('billing', true, T0 + 8)).toMatchObject({ changed: true, schedule: { paused: true, nextFireAt: T0 + 5000, version: 4 } });
    expect(await c.setSchedulePaused('billing', true, T0 + 9)).toMatchObject({ changed: false, schedule: { paused: true, version: 4, updatedAt: T0 + 8 } });
    // Resumed long after its next fire time, it keeps the cursor: the fire pass plans what passed meanwhile.
    expect(await c.setSchedulePaused('billing', false, T0 + 60_000)).toMatchObject({ changed: true, schedule: { paused: false, nextFireAt: T0 + 5000, version: 5 } });
    expect(await c.setSchedulePaused('billing', false, T0 + 60_001)).toMatchObject({ changed: false, schedule: { paused: false, version: 5, updatedAt: T0 + 60_000 } });
    expect(await c.setSchedulePaused('nobody', false, T0 + 60_002)).toBeNull();
    expect((await c.listSchedules()).map((s) => s.name)).toEqual(['billing']);
    expect(await c.removeSchedule('billing')).toBe(true);
    expect(await c.removeSchedule('billing')).toBe(false);
    expect(await c.getSchedule('billing')).toBeNull();
  });

  it('each fire time produces exactly one job, even when fired twice', async () => {
    const c = await open();
    const { schedule } = await c.upsertSchedule(spec, T0, T0);
    const lease = (await c.acquireLease({ name: 'leader', holder: 'a', ttlMs: 10_000, now: T0 }))!;
    const fence = { lease: 'leader', token: lease.token };
    const fires = [T0, T0 + 1000].map((fireAt) => ({ fireAt, job: newJob({ runAt: fireAt, idempotencyKey: `schedule:billing:${fireAt}` }) }));
    const first = await c.fireSchedule({ fence, name: 'billing', version: schedule.version, fires, lastFireAt: T0 + 1000, nextFireAt: T0 + 2000, now: T0 + 1000 });
    expect(first.map((r) => r.created)).toEqual([true, true]);
    // A second pass over the same fire times (another instance, or a retry) makes no new job.
    const second = await c.fireSchedule({ fence, name: 'billing', version: schedule.version, fires, lastFireAt: T0 + 1000, nextFireAt: T0 + 2000, now: T0 + 1001 });
    expect(second.map((r) => r.created)).toEqual([false, false]);
    expect(second.map((r) => r.jobId)).toEqual(first.map((r) => r.jobId));
    expect(await store.countJobs({ type: 'tick' })).toBe(2);
    expect(await c.getSchedule('billing')).toMatchObject({ nextFireAt: T0 + 2000, lastFireAt: T0 + 1000 });
    expect((await c.listFires('billing', 10)).map((f) => [f.fireAt, f.term])).toEqual([
      [T0 + 1000, 1],
      [T0, 1],
    ]);
  });

  it('a fenced write with a stale term is refused and changes nothing', async () => {
    const c = await open();
    const { schedule } = await c.upsertSchedule(spec, T0, T0);
    await c.acquireLease({ name: 'leader', holder: 'a', ttlMs: 1000, now: T0 });
    const taken = await c.acquireLease({ name: 'leader', holder: 'b', ttlMs: 1000, now: T0 + 1000 });
    expect(taken?.token).toBe(2);
    const fire = { fireAt: T0, job: newJob() };
    await expect(
      c.fireSchedule({ fence: { lease: 'leader', token: 1 }, name: 'billing', version: schedule.version, fires: [fire], lastFireAt: T0, nextFireAt: T0 + 1000, now: T0 + 1001 }),
    ).rejects.toBeInstanceOf(StaleTermError);
    await expect(c.pruneJobs({ fence: { lease: 'leader', token: 1 }, state: 'completed', finishedBefore: T0 + 1e9, limit: 10, now: T0 + 1001 })).rejects.toBeInstanceOf(
      StaleTermError,
    );
    await expect(c.upsertSchedule({ ...spec, name: 'other' }, T0, T0 + 1001, { lease: 'leader', token: 1 })).rejects.toBeInstanceOf(StaleTermError);
    expect(await c.getSchedule('other')).toBeNull();
    // An expired term is refused too, even when nobody took over.
    await expect(c.pruneExpiredKeys({ fence: { lease: 'leader', token: 2 }, now: T0 + 2001, limit: 10 })).rejects.toBeInstanceOf(StaleTermError);
    expect(await store.countJobs({})).toBe(0);
    expect(await c.listFires('billing', 10)).toEqual([]);
    expect((await c.getSchedule('billing'))?.nextFireAt).toBe(T0);
    // The current term is accepted.
    const ok = await c.fireSchedule({ fence: { lease: 'leader', token: 2 }, name: 'billing', version: schedule.version, fires: [fire], lastFireAt: T0, nextFireAt: T0 + 1000, now: T0 + 1001 });
    expect(ok).toHaveLength(1);
  });

  it('a fire pass that read an older version of the schedule writes nothing', async () => {
    const c = await open();
    const { schedule } = await c.upsertSchedule(spec, T0, T0);
    await c.setSchedulePaused('billing', true, T0 + 1);
    await c.acquireLease({ name: 'leader', holder: 'a', ttlMs: 1000, now: T0 });
    const r = await c.fireSchedule({ fence: { lease: 'leader', token: 1 }, name: 'billing', version: schedule.version, fires: [{ fireAt: T0, job: newJob() }], lastFireAt: T0, nextFireAt: T0 + 1000, now: T0 + 2 });
    expect(r).toEqual([]);
    expect(await store.countJobs({})).toBe(0);
  });

  it('a fire pass that read a schedule since removed and added again under its name writes nothing', async () => {
    const c = await open();
    const { schedule: read } = await c.upsertSchedule(spec, T0, T0); // what a pass reads
    await c.removeSchedule('billing');
    await c.upsertSchedule({ ...spec, type: 'report', cron: '0 3 * * *' }, T0 + 86_400_000, T0 + 1);
    await c.acquireLease({ name: 'leader', holder: 'a', ttlMs: 1000, now: T0 });
    const r = await c.fireSchedule({ fence: { lease: 'leader', token: 1 }, name: 'billing', version: read.version, fires: [{ fireAt: T0, job: newJob() }], lastFireAt: T0, nextFireAt: T0 + 1000, now: T0 + 6 });
    expect(r).toEqual([]);
    expect(await store.countJobs({})).toBe(0);
    expect(await c.listFires('billing', 10)).toEqual([]);
  });

  it('pruning deletes exactly the finished jobs past the cutoff, in bounded batches, and counts them by type and state', async () => {
    const c = await open();
    const inserted = await store.insertJobs(
      [newJob({ type: 'a' }), newJob({ type: 'a' }), newJob({ type: 'a' }), newJob({ type: 'b' }), newJob({ type: 'b' }), newJob({ type: 'a', idempotencyKey: 'k1', keyTtlMs: 1000 })],
      T0,
    );
    const claimed = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['a', 'b'], limit: 10, leaseMs: 1000, now: T0 });
    const byId = new Map(claimed.map((j) => [j.id, j]));
    const [a1, a2, a3, b1, b2, a4] = inserted.map((i) => byId.get(i.job.id)!);
    await store.completeJobs([{ id: a1.id, token: a1.leaseToken, result: null }, { id: a2.id, token: a2.leaseToken, result: null }, { id: b1.id, token: b1.leaseToken, result: null }], T0 + 10);
    await store.completeJobs([{ id: a3.id, token: a3.leaseToken, result: null }], T0 + 5000); // too young
    await store.putOnce(a1.id, 'charge', { ok: true }, T0 + 5);
    await store.completeJobs([{ id: a4.id, token: a4.leaseToken, result: null }], T0 + 10);
    await store.cancelJob(b2.id, 'test', T0 + 10);
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 60_000, now: T0 });
    const fence = { lease: 'leader', token: 1 };

    const first = await c.pruneJobs({ fence, state: 'completed', finishedBefore: T0 + 1000, exceptTypes: [], limit: 2, now: T0 + 6000 });
    expect(Object.values(first).reduce((x, y) => x + y, 0)).toBe(2);
    const second = await c.pruneJobs({ fence, state: 'completed', finishedBefore: T0 + 1000, exceptTypes: [], limit: 2, now: T0 + 6000 });
    const third = await c.pruneJobs({ fence, state: 'completed', finishedBefore: T0 + 1000, exceptTypes: [], limit: 2, now: T0 + 6000 });
    expect(Object.values(second).reduce((x, y) => x + y, 0) + Object.values(third).reduce((x, y) => x + y, 0)).toBe(2);
    // Gone: the four old completed jobs; kept: the young one and the cancelled one.
    for (const j of [a1, a2, b1, a4]) expect(await store.getJob(j.id)).toBeNull();
    expect((await store.getJob(a3.id))?.state).toBe('completed');
    expect((await store.getJob(b2.id))?.state).toBe('cancelled');
    expect(await store.getEvents(a1.id)).toEqual([]);
    expect(await store.getOnce(a1.id, 'charge')).toBeNull();
    // Per-type filters.
    expect(await c.pruneJobs({ fence, state: 'cancelled', finishedBefore: T0 + 1000, onlyTypes: ['a'], limit: 10, now: T0 + 6000 })).toEqual({});
    expect(await c.pruneJobs({ fence, state: 'cancelled', finishedBefore: T0 + 1000, onlyTypes: ['b'], limit: 10, now: T0 + 6000 })).toEqual({ b: 1 });
    expect(await c.prunedCounts()).toEqual([
      { type: 'a', state: 'completed', count: 3, lastPrunedAt: T0 + 6000 },
      { type: 'b', state: 'cancelled', count: 1, lastPrunedAt: T0 + 6000 },
      { type: 'b', state: 'completed', count: 1, lastPrunedAt: T0 + 6000 },
    ]);
  });

  it('retention keeps a finished child while its parent is unfinished, and prunes it once the parent is', async () => {
    const c = await open();
    const [parent] = await store.insertJobs([newJob({ type: 'p' })], T0);
    const [child, orphan] = await store.insertJobs([newJob({ type: 'a', parentId: parent.job.id }), newJob({ type: 'a', parentId: '999999' })], T0);
    const claimed = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['p', 'a'], limit: 10, leaseMs: 1000, now: T0 });
    const done = (type: string) => claimed.filter((j) => j.type === type).map((j) => ({ id: j.id, token: j.leaseToken, result: null }));
    await store.completeJobs(done('a'), T0 + 10);
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 60_000, now: T0 });
    const prune = () => c.pruneJobs({ fence: { lease: 'leader', token: 1 }, state: 'completed', finishedBefore: T0 + 1000, exceptTypes: [], limit: 10, now: T0 + 2000 });
    // The parent still runs (a workflow waiting in join): its child stays. A child whose parent is gone goes.
    expect(await prune()).toEqual({ a: 1 });
    expect(await store.getJob(orphan.job.id)).toBeNull();
    expect((await store.getJob(child.job.id))?.state).toBe('completed');
    await store.completeJobs(done('p'), T0 + 20);
    expect(await prune()).toEqual({ a: 1, p: 1 });
    expect(await store.getJob(child.job.id)).toBeNull();
  });

  it('retention keeps the children of a dead parent (a redrive resumes it), and a job whose idempotency key is live', async () => {
    const c = await open();
    const [parent] = await store.insertJobs([newJob({ type: 'p' })], T0);
    const [child, keyed, expired] = await store.insertJobs(
      [
        newJob({ type: 'a', parentId: parent.job.id }),
        newJob({ type: 'k', idempotencyKey: 'live', keyTtlMs: 1_000_000 }),
        newJob({ type: 'k', idempotencyKey: 'gone', keyTtlMs: 100 }),
      ],
      T0,
    );
    const claimed = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['p', 'a', 'k'], limit: 10, leaseMs: 1000, now: T0 });
    const of = (type: string) => claimed.filter((j) => j.type === type);
    await store.completeJobs([...of('a'), ...of('k')].map((j) => ({ id: j.id, token: j.leaseToken, result: null })), T0 + 10);
    const [p] = of('p');
    const error = { kind: 'permanent', name: 'Error', message: 'boom', fingerprint: 'fp' };
    await store.failJob({ id: p.id, token: p.leaseToken, outcome: { kind: 'dead', reason: 'permanent', error }, now: T0 + 10 });
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 10_000_000, now: T0 });
    const prune = (now: number) => c.pruneJobs({ fence: { lease: 'leader', token: 1 }, state: 'completed', finishedBefore: T0 + 1000, exceptTypes: [], limit: 10, now });
    expect(await prune(T0 + 2000)).toEqual({ k: 1 });
    expect(await store.getJob(expired.job.id)).toBeNull();
    expect((await store.getJob(child.job.id))?.state).toBe('completed');
    expect((await store.getJob(keyed.job.id))?.idempotencyKey).toBe('live');
    // Once the key has expired the keyed job goes; once the dead parent is purged, its child goes.
    expect(await prune(T0 + 10 + 1_000_000)).toEqual({ k: 1 });
    expect(await store.purgeDead({ ids: [parent.job.id] })).toBe(1);
    expect(await prune(T0 + 10 + 1_000_000)).toEqual({ a: 1 });
  });

  it("retention keeps a dead job that holds its ordering key, so the key's later jobs go on waiting; one enqueued with orderingOnDead 'skip' goes", async () => {
    const c = await open();
    const [head, later, skipping] = await store.insertJobs(
      [newJob({ orderingKey: 'acct-1' }), newJob({ orderingKey: 'acct-1' }), newJob({ orderingKey: 'acct-2', orderingOnDead: 'skip' })],
      T0,
    );
    const claimed = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['tick'], limit: 10, leaseMs: 1000, now: T0 });
    expect(claimed.map((j) => j.id).sort()).toEqual([head.job.id, skipping.job.id].sort());
    const error = { kind: 'permanent', name: 'Error', message: 'boom', fingerprint: 'fp' };
    for (const j of claimed) await store.failJob({ id: j.id, token: j.leaseToken, outcome: { kind: 'dead', reason: 'permanent', error }, now: T0 + 10 });
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 60_000, now: T0 });
    expect(await c.pruneJobs({ fence: { lease: 'leader', token: 1 }, state: 'dead', finishedBefore: T0 + 1000, exceptTypes: [], limit: 10, now: T0 + 2000 })).toEqual({ tick: 1 });
    expect(await store.getJob(skipping.job.id)).toBeNull();
    expect((await store.getJob(head.job.id))?.state).toBe('dead');
    // The key still waits for its dead head: nothing to claim.
    expect(await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['tick'], limit: 10, leaseMs: 1000, now: T0 + 2000 })).toEqual([]);
    // Purged by an operator, the head releases its key.
    expect(await store.purgeDead({ ids: [head.job.id] })).toBe(1);
    expect((await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['tick'], limit: 10, leaseMs: 1000, now: T0 + 2000 })).map((j) => j.id)).toEqual([later.job.id]);
  });

  it('retention prunes compensated workflows as a final state', async () => {
    const c = await open();
    const [job] = await store.insertJobs([newJob({ type: 'saga' })], T0);
    const [claimed] = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['saga'], limit: 1, leaseMs: 1000, now: T0 });
    await store.completeJobs([{ id: claimed.id, token: claimed.leaseToken, result: null, state: 'compensated' }], T0 + 10);
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 60_000, now: T0 });
    const prune = (state: 'completed' | 'compensated') =>
      c.pruneJobs({ fence: { lease: 'leader', token: 1 }, state, finishedBefore: T0 + 1000, exceptTypes: [], limit: 10, now: T0 + 2000 });
    expect(await prune('completed')).toEqual({});
    expect(await prune('compensated')).toEqual({ saga: 1 });
    expect(await store.getJob(job.job.id)).toBeNull();
    expect(await c.prunedCounts()).toEqual([expect.objectContaining({ type: 'saga', state: 'compensated', count: 1 })]);
  });

  it('expired idempotency keys are freed in bounded batches; live ones stay', async () => {
    const c = await open();
    const ins = await store.insertJobs([newJob({ type: 'a', idempotencyKey: 'old', keyTtlMs: 100 }), newJob({ type: 'a', idempotencyKey: 'live', keyTtlMs: 1_000_000 })], T0);
    const claimed = await store.claimJobs({ workerId: 'w', queues: ['default'], types: ['a'], limit: 10, leaseMs: 1000, now: T0 });
    await store.completeJobs(claimed.map((j) => ({ id: j.id, token: j.leaseToken, result: null })), T0);
    await c.acquireLease({ name: 'leader', holder: 'x', ttlMs: 60_000, now: T0 });
    expect(await c.pruneExpiredKeys({ fence: { lease: 'leader', token: 1 }, now: T0 + 1000, limit: 10 })).toBe(1);
    expect((await store.getJob(ins[0].job.id))?.idempotencyKey).toBeNull();
    expect((await store.getJob(ins[1].job.id))?.idempotencyKey).toBe('live');
  });
});
