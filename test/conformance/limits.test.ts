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
    const s = openStore(url);
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
    expect(await s.limits.takeToken({ ...r, now: T0 })).toEqual({ taken: true, waitMs: 0 });
    expect(await s.limits.takeToken({ ...r, now: T0 })).toEqual({ taken: true, waitMs: 0 });
    expect(await s.limits.takeToken({ ...r, now: T0 + 100 })).toEqual({ taken: false, waitMs: 400 });
    expect((await s.limits.takeToken({ ...r, now: T0 + 500 })).taken).toBe(true);
    expect((await s.limits.takeToken({ ...r, now: T0 + 600 })).taken).toBe(false);
    // Other keys have their own bucket.
    expect((await s.limits.takeToken({ ...r, key: 'rate:b', now: T0 + 600 })).taken).toBe(true);
  });

  it('concurrent takes from two connections never exceed the bucket', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    const r = { key: 'rate:x', max: 3, perMs: 60_000, now: T0 };
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).limits.takeToken(r)));
    expect(results.filter((x) => x.taken)).toHaveLength(3);
  });

  it('a slot counts only while its lease is live; concurrent acquirers never exceed the limit', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    await a.insertJobs(Array.from({ length: 6 }, job), T0);
    const claimed = await a.claimJobs({ workerId: 'w', queues: ['default'], types: ['t'], limit: 6, leaseMs: 60_000, now: T0 });
    const got = await Promise.all(
      claimed.map((j, i) => (i % 2 ? a : b).limits.acquireSlot({ key: 'conc:t', max: 2, jobId: j.id, token: j.leaseToken, now: T0 })),
    );
    expect(got.filter(Boolean)).toHaveLength(2);
    expect(await a.limits.slotsInUse()).toEqual({ 'conc:t': 2 });
    const holders = claimed.filter((_, i) => got[i]);
    // A finished job's slot is free even if never released (its process died before releasing it).
    await a.completeJobs([{ id: holders[0].id, token: holders[0].leaseToken, result: null }], T0 + 1);
    const other = claimed.find((_, i) => !got[i])!;
    expect(await b.limits.acquireSlot({ key: 'conc:t', max: 2, jobId: other.id, token: other.leaseToken, now: T0 + 2 })).toBe(true);
    await b.limits.releaseSlot('conc:t', holders[1].id);
    expect(await a.limits.slotsInUse()).toEqual({ 'conc:t': 1 });
  });
});
