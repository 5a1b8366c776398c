/**
 * Limit store conformance: token buckets refill at their rate and never hand
 * out more than they hold, even to concurrent connections; a concurrency slot
 * counts only while the lease that took it is live.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = 1_700_000_000_000;
const job = (): NewJob => ({
  type: 't',
  queue: 'default',
  payload: {},
  payloadHash: 'h',
  priority: 0,
  runAt: T0,
  maxAttempts: 3,
  idempotencyKey: null,
  keyTtlMs: 1000,
  parentId: null,
});

describe.each(storeKinds)('limit store conformance: %s', (kind) => {
  let url: string;
  const stores: Store[] = [];
  const open = async () => {
    const s = await openStore(url);
    stores.push(s);
    await s.migrate();
    return s;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await dropStore(url);
  });

  it('a token bucket starts full, empties, and refills at its rate', async () => {
    url = freshStoreUrl(kind);
    const s = await open();
    const r = { key: 'rate:a', max: 2, perMs: 1000 };
    expect(await s.limits.takeTokens({ ...r, now: T0 }, 1)).toEqual({ taken: 1, waitMs: 0 });
    expect(await s.limits.takeTokens({ ...r, now: T0 }, 1)).toEqual({ taken: 1, waitMs: 0 });
    expect(await s.limits.takeTokens({ ...r, now: T0 + 100 }, 1)).toEqual({ taken: 0, waitMs: 400 });
    expect((await s.limits.takeTokens({ ...r, now: T0 + 500 }, 1)).taken).toBe(1);
    expect((await s.limits.takeTokens({ ...r, now: T0 + 600 }, 1)).taken).toBe(0);
    // Other keys have their own bucket.
    expect((await s.limits.takeTokens({ ...r, key: 'rate:b', now: T0 + 600 }, 1)).taken).toBe(1);
  });

  it('one call takes several tokens, as many as the bucket holds, and says when the next comes', async () => {
    url = freshStoreUrl(kind);
    const s = await open();
    const r = { key: 'rate:many', max: 4, perMs: 1000 };
    expect(await s.limits.takeTokens({ ...r, now: T0 }, 3)).toEqual({ taken: 3, waitMs: 0 });
    // One left; five asked: one taken, the next whole token is 250 ms away.
    expect(await s.limits.takeTokens({ ...r, now: T0 }, 5)).toEqual({ taken: 1, waitMs: 250 });
    // 625 ms later 2.5 tokens have come back: two whole ones are taken, the half left needs 125 ms more.
    expect(await s.limits.takeTokens({ ...r, now: T0 + 625 }, 5)).toEqual({ taken: 2, waitMs: 125 });
  });

  it('concurrent takes from two connections never exceed the bucket', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    const r = { key: 'rate:x', max: 50, perMs: 60_000, now: T0 };
    // 60 calls asking for 120 tokens, many in flight at once on each store's pool, the first ones racing to create the bucket.
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).limits.takeTokens(r, 1 + (i % 3))));
    expect(results.reduce((sum, x) => sum + x.taken, 0)).toBe(50);
    expect((await a.limits.takeTokens(r, 1)).taken).toBe(0);
  });

  it('a slot counts only while its lease is live; concurrent acquirers never exceed the limit', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    await a.insertJobs(Array.from({ length: 6 }, job), T0);
    const claimed = await a.claimJobs({ workerId: 'w', queues: ['default'], types: ['t'], limit: 6, leaseMs: 60_000, now: T0 });
    const holder = (j: (typeof claimed)[number]) => ({ jobId: j.id, token: j.leaseToken });
    const got = await Promise.all(claimed.map((j, i) => (i % 2 ? a : b).limits.acquireSlots({ key: 'conc:t', max: 2, holders: [holder(j)], now: T0 })));
    expect(got.flat()).toHaveLength(2);
    expect(await a.limits.slotsInUse()).toEqual({ 'conc:t': 2 });
    const holders = claimed.filter((_, i) => got[i].length === 1);
    // A finished job's slot is free even if never released (its process died before releasing it).
    await a.completeJobs([{ id: holders[0].id, token: holders[0].leaseToken, result: null }], T0 + 1);
    const others = claimed.filter((_, i) => got[i].length === 0);
    // Several holders in one call: slots go in the order asked, up to the limit.
    expect(await b.limits.acquireSlots({ key: 'conc:t', max: 2, holders: others.map(holder), now: T0 + 2 })).toEqual([others[0].id]);
    // A holder that has a slot keeps it when it asks again, and does not count against itself.
    expect(await b.limits.acquireSlots({ key: 'conc:t', max: 2, holders: [holder(others[0])], now: T0 + 3 })).toEqual([others[0].id]);
    await b.limits.releaseSlots('conc:t', [holder(holders[1]), holder(others[0])]);
    expect(await a.limits.slotsInUse()).toEqual({});
    expect(await a.limits.acquireSlots({ key: 'conc:t', max: 2, holders: others.slice(1).map(holder), now: T0 + 4 })).toEqual(others.slice(1, 3).map((j) => j.id));
  });

  it('a slot is released only under the token that took it: a late release of an earlier attempt frees nothing', async () => {
    url = freshStoreUrl(kind);
    const s = await open();
    await s.insertJobs([job()], T0);
    const [first] = await s.claimJobs({ workerId: 'w', queues: ['default'], types: ['t'], limit: 1, leaseMs: 100, now: T0 });
    expect(await s.limits.acquireSlots({ key: 'conc:late', max: 1, holders: [{ jobId: first.id, token: first.leaseToken }], now: T0 })).toEqual([first.id]);
    // The first attempt's lease lapses (a frozen process, or a handler past its timeout); the job is claimed again.
    const error = { kind: 'lease_lost', name: 'LeaseExpired', message: 'lease expired', fingerprint: 'x' } as const;
    await s.rescueExpiredLeases({ now: T0 + 1000, limit: 10, decide: () => ({ kind: 'requeue', error, crashes: 1, isolate: false }) });
    const [again] = await s.claimJobs({ workerId: 'w2', queues: ['default'], types: ['t'], limit: 1, leaseMs: 60_000, now: T0 + 1000 });
    expect(again.leaseToken).not.toBe(first.leaseToken);
    expect(await s.limits.acquireSlots({ key: 'conc:late', max: 1, holders: [{ jobId: again.id, token: again.leaseToken }], now: T0 + 1000 })).toEqual([again.id]);
    // The first attempt's handler returns at last and releases its slot: the second attempt keeps its own.
    await s.limits.releaseSlots('conc:late', [{ jobId: first.id, token: first.leaseToken }]);
    expect(await s.limits.slotsInUse()).toEqual({ 'conc:late': 1 });
    await s.limits.releaseSlots('conc:late', [{ jobId: again.id, token: again.leaseToken }]);
    expect(await s.limits.slotsInUse()).toEqual({});
  });

  it('many acquirers racing on two connections get exactly the limit', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    await a.insertJobs(Array.from({ length: 40 }, job), T0);
    const claimed = await a.claimJobs({ workerId: 'w', queues: ['default'], types: ['t'], limit: 40, leaseMs: 60_000, now: T0 });
    // Ten calls of four holders each, all in flight at once.
    const calls = Array.from({ length: 10 }, (_, i) => claimed.slice(i * 4, i * 4 + 4).map((j) => ({ jobId: j.id, token: j.leaseToken })));
    const got = await Promise.all(calls.map((holders, i) => (i % 2 ? a : b).limits.acquireSlots({ key: 'conc:race', max: 5, holders, now: T0 })));
    expect(got.flat()).toHaveLength(5);
    expect(new Set(got.flat()).size).toBe(5);
    expect(await a.limits.slotsInUse()).toEqual({ 'conc:race': 5 });
  });
});
