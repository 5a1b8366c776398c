import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, ValidationError, type Rebound } from '../../src/index.ts';
import { MAX_SLOTS } from '../../src/policies/limits.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';

describe.each(storeKinds)('the largest concurrency max on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a max beyond what the stores hold is refused at defineJob, naming the field; the largest one runs its job', async () => {
    // Before: 3e9 was accepted, and on PostgreSQL every attempt failed (integer out of range) and the job went dead.
    expect(() => defineJob('big-max', { concurrency: { max: 3_000_000_000 }, handler: async () => {} })).toThrow(ValidationError);
    expect(() => defineJob('big-max', { concurrency: { max: 3_000_000_000 }, handler: async () => {} })).toThrow(/concurrency\.max/);
    url = freshStoreUrl(kind);
    const big = defineJob('big-max', { concurrency: { max: MAX_SLOTS }, retry: { maxAttempts: 1 }, handler: async () => {} });
    rebound = await createRebound({ store: url, jobs: [big] });
    const { id } = await rebound.enqueue('big-max', {});
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(async () => ['completed', 'dead'].includes((await rebound.getJob(id))!.state));
    await worker.stop();
    expect((await rebound.getJob(id))!.state).toBe('completed');
  });
});
