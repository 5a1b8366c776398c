/**
 * Per-key ordering, checked unchanged against every store: jobs sharing an
 * ordering key are claimed one at a time in enqueue order (a per-key sequence
 * number), other keys and unkeyed jobs flow meanwhile, and a dead job holds
 * its key until it is redriven or purged unless it was enqueued with 'skip'.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';
import { jobFactory, T0 } from '../helpers/new-job.ts';

const error = { kind: 'permanent', name: 'Error', message: 'boom', fingerprint: 'fp1' };

const baseJob = jobFactory('email');
const newJob = (over: Partial<NewJob> = {}) => baseJob({ payloadHash: 'h1', ...over });

describe.each(storeKinds)('ordering keys: %s', (kind) => {
  let url: string;
  let store: Store;
  const open = async () => {
    url = freshStoreUrl(kind);
    store = await openStore(url);
    await store.migrate();
    return store;
  };
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });
  const claim = (s: Store, now = T0, limit = 10) =>
    s.claimJobs({ workerId: 'w1', queues: ['default'], types: ['email'], limit, leaseMs: 1000, now });
  const complete = (s: Store, ids: { id: string; leaseToken: number }[], now = T0) =>
    s.completeJobs(ids.map((j) => ({ id: j.id, token: j.leaseToken, result: null })), now);

  it('numbers the jobs of each key in enqueue order, within and across batches', async () => {
    const s = await open();
    const first = await s.insertJobs([newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'b' }), newJob({ orderingKey: 'a' }), newJob()], T0);
    const second = await s.insertJobs([newJob({ orderingKey: 'a' })], T0);
    expect([...first, ...second].map((r) => [r.job.orderingKey ?? null, r.job.orderingSeq ?? null])).toEqual([
      ['a', 1],
      ['b', 1],
      ['a', 2],
      [null, null],
      ['a', 3],
    ]);
    expect(await s.getJob(second[0].job.id)).toMatchObject({ orderingKey: 'a', orderingSeq: 3 });
  });

  it('claims only the head of each key, while other keys and unkeyed jobs flow', async () => {
    const s = await open();
    const [a1, a2, b1, u, a3] = (
      await s.insertJobs(
        [newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'b' }), newJob(), newJob({ orderingKey: 'a' })],
        T0,
      )
    ).map((r) => r.job);
    const round1 = await claim(s);
    expect(round1.map((j) => j.id).sort()).toEqual([a1.id, b1.id, u.id].sort());
    // While a1 runs, a2 and a3 wait.
    expect(await claim(s)).toEqual([]);
    await complete(s, round1.filter((j) => j.id === a1.id));
    const round2 = await claim(s);
    expect(round2.map((j) => j.id)).toEqual([a2.id]);
    await complete(s, round2);
    expect((await claim(s)).map((j) => j.id)).toEqual([a3.id]);
  });

  it('a head waiting for its retry holds its key even when later jobs are due', async () => {
    const s = await open();
    const [a1, a2] = (await s.insertJobs([newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'a' })], T0)).map((r) => r.job);
    const [c] = await claim(s);
    expect(c.id).toBe(a1.id);
    await s.failJob({ id: c.id, token: c.leaseToken, now: T0, outcome: { kind: 'retry', runAt: T0 + 500, delayMs: 500, error } });
    expect(await claim(s, T0 + 100)).toEqual([]);
    // A blocked job is not reported as due work (an idle worker must not spin on it).
    expect(await s.nextRunAt(['default'], ['email'])).toBe(T0 + 500);
    const [again] = await claim(s, T0 + 500);
    expect(again.id).toBe(a1.id);
    await complete(s, [again], T0 + 500);
    expect((await claim(s, T0 + 500)).map((j) => j.id)).toEqual([a2.id]);
  });

  it('a dead job holds its key until it is redriven or purged; with orderingOnDead "skip" it does not', async () => {
    const s = await open();
    const [a1, a2, b1, b2] = (
      await s.insertJobs(
        [
          newJob({ orderingKey: 'a' }),
          newJob({ orderingKey: 'a' }),
          newJob({ orderingKey: 'b', orderingOnDead: 'skip' }),
          newJob({ orderingKey: 'b' }),
        ],
        T0,
      )
    ).map((r) => r.job);
    for (const j of await claim(s)) {
      await s.failJob({ id: j.id, token: j.leaseToken, now: T0, outcome: { kind: 'dead', reason: 'permanent', error } });
    }
    expect((await s.getJob(a1.id))?.state).toBe('dead');
    // b1 died with 'skip': b2 goes on. a1 died with 'wait': a2 waits.
    expect((await claim(s)).map((j) => j.id)).toEqual([b2.id]);
    expect((await s.getJob(a2.id))?.state).toBe('available');
    expect(await s.redriveDead({ ids: [a1.id] }, 'op', T0 + 1)).toEqual([a1.id]);
    const [redriven] = await claim(s, T0 + 1);
    expect(redriven.id).toBe(a1.id);
    await s.failJob({ id: redriven.id, token: redriven.leaseToken, now: T0 + 2, outcome: { kind: 'dead', reason: 'permanent', error } });
    expect(await claim(s, T0 + 2)).toEqual([]);
    expect(await s.purgeDead({ ids: [a1.id] })).toBe(1);
    expect((await claim(s, T0 + 3)).map((j) => j.id)).toEqual([a2.id]);
    expect(b1.orderingKey).toBe('b');
  });

  it("a redriven 'skip' job whose key went on runs after its key's unfinished later jobs, never beside one", async () => {
    const s = await open();
    const [b1, b2, b3, c1, c2] = (
      await s.insertJobs(
        [
          newJob({ orderingKey: 'b', orderingOnDead: 'skip' }),
          newJob({ orderingKey: 'b' }),
          newJob({ orderingKey: 'b' }),
          newJob({ orderingKey: 'c', orderingOnDead: 'skip' }),
          newJob({ orderingKey: 'c' }),
        ],
        T0,
      )
    ).map((r) => r.job);
    for (const j of await claim(s)) {
      await s.failJob({ id: j.id, token: j.leaseToken, now: T0, outcome: { kind: 'dead', reason: 'permanent', error } });
    }
    const running = await claim(s);
    expect(running.map((j) => j.id).sort()).toEqual([b2.id, c2.id].sort());
    await complete(s, running.filter((j) => j.id === c2.id));
    expect((await s.redriveDead({ ids: [b1.id, c1.id] }, 'op', T0 + 1)).sort()).toEqual([b1.id, c1.id].sort());
    // b2 still runs: b1 goes behind b3. Key c has nothing left unfinished: c1 keeps its place.
    expect(await s.getJob(b1.id)).toMatchObject({ state: 'available', orderingSeq: 4 });
    expect(await s.getJob(c1.id)).toMatchObject({ state: 'available', orderingSeq: 1 });
    expect((await claim(s, T0 + 1)).map((j) => j.id)).toEqual([c1.id]);
    await complete(s, running.filter((j) => j.id === b2.id), T0 + 2);
    const next = await claim(s, T0 + 2);
    expect(next.map((j) => j.id)).toEqual([b3.id]);
    await complete(s, next, T0 + 3);
    expect((await claim(s, T0 + 3)).map((j) => j.id)).toEqual([b1.id]);
  });

  it('a cancelled job releases its key', async () => {
    const s = await open();
    const [a1, a2] = (await s.insertJobs([newJob({ orderingKey: 'a', runAt: T0 + 1000 }), newJob({ orderingKey: 'a' })], T0)).map((r) => r.job);
    expect(await claim(s)).toEqual([]);
    await s.cancelJob(a1.id, 'op', T0);
    expect((await claim(s)).map((j) => j.id)).toEqual([a2.id]);
  });

  it('a running head cancelled holds its key until its worker lets go of it, or its lease ends', async () => {
    const s = await open();
    const [a1, a2, b1, b2] = (
      await s.insertJobs([newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'a' }), newJob({ orderingKey: 'b' }), newJob({ orderingKey: 'b' })], T0)
    ).map((r) => r.job);
    const heads = await claim(s);
    expect(heads.map((j) => j.id).sort()).toEqual([a1.id, b1.id].sort());
    await s.cancelJob(a1.id, 'op', T0 + 1);
    await s.cancelJob(b1.id, 'op', T0 + 1);
    // Their handlers run on until their worker hears of the cancel: the next jobs of their keys wait.
    expect(await claim(s, T0 + 2)).toEqual([]);
    expect(await s.nextRunAt(['default'], ['email'])).toBeNull();
    // The worker gives a1's attempt up: a2 may start.
    const a = heads.find((j) => j.id === a1.id)!;
    await s.recordLeaseLost({ id: a.id, token: a.leaseToken, attempt: a.attempt, worker: 'w1' }, T0 + 3);
    expect((await claim(s, T0 + 4)).map((j) => j.id)).toEqual([a2.id]);
    // Nobody lets go of b1 (its worker died): its lease's end frees the key.
    expect(await claim(s, T0 + 999)).toEqual([]);
    expect((await claim(s, T0 + 1000)).map((j) => j.id)).toEqual([b2.id]);
  });

  it('a suspect is reported as waiting to run alone only as its key\'s head; a \'skip\' job redriven meanwhile waits behind it', async () => {
    const s = await open();
    const [x, y, z] = await s.insertJobs(
      [newJob({ orderingKey: 'o', orderingOnDead: 'skip' }), newJob({ orderingKey: 'o' }), newJob({ orderingKey: 'o' })],
      T0,
    );
    const [first] = await claim(s);
    expect(first.id).toBe(x.job.id);
    await s.failJob({ id: x.job.id, token: first.leaseToken, outcome: { kind: 'dead', reason: 'permanent', error }, now: T0 });
    const [second] = await claim(s);
    expect(second.id).toBe(y.job.id);
    // y's worker dies and y becomes a suspect; x, redriven while y was unfinished, goes behind z.
    expect(await s.redriveDead({ ids: [x.job.id] }, 'op', T0 + 1)).toEqual([x.job.id]);
    await s.rescueExpiredLeases({ now: T0 + 5000, limit: 10, decide: () => ({ kind: 'requeue', error, crashes: 0, isolate: true }) });
    expect(await s.getJob(y.job.id)).toMatchObject({ state: 'available', isolated: true });
    expect(await s.hasIsolatedJobs(['default'], ['email'], T0 + 5000)).toBe(true);
    expect(await claim(s, T0 + 5000)).toEqual([]);
    const [alone] = await s.claimJobs({ workerId: 'w2', queues: ['default'], types: ['email'], limit: 10, leaseMs: 1000, now: T0 + 5000, isolated: true });
    expect(alone.id).toBe(y.job.id);
    expect(await s.hasIsolatedJobs(['default'], ['email'], T0 + 5000)).toBe(false);
    await complete(s, [alone], T0 + 5001);
    const [next] = await claim(s, T0 + 5001);
    expect(next.id).toBe(z.job.id);
    await complete(s, [next], T0 + 5002);
    expect((await claim(s, T0 + 5002)).map((j) => j.id)).toEqual([x.job.id]);
  });

  it('concurrent claimers never run two jobs of one key at once', async () => {
    const s = await open();
    await s.insertJobs(Array.from({ length: 30 }, (_, i) => newJob({ orderingKey: `k${i % 3}` })), T0);
    const others = [await openStore(url), await openStore(url)];
    const stores = [s, ...others];
    const seen: string[] = [];
    let now = T0;
    for (let round = 0; round < 10; round++) {
      const claimed = (await Promise.all(stores.map((st) => claim(st, now)))).flat();
      const keys = claimed.map((j) => j.orderingKey!);
      expect(new Set(keys).size).toBe(keys.length);
      seen.push(...claimed.map((j) => `${j.orderingKey}:${j.orderingSeq}`));
      await complete(s, claimed, ++now);
    }
    await Promise.all(others.map((o) => o.close()));
    for (const k of ['k0', 'k1', 'k2']) {
      expect(seen.filter((x) => x.startsWith(`${k}:`))).toEqual(Array.from({ length: 10 }, (_, i) => `${k}:${i + 1}`));
    }
  });
});
