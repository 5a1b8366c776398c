/**
 * Per-key ordering through the library API: cancelling the running head of a key does not let the next job
 * start while the head's handler runs, and the next starts once the worker has let the head go.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('ordering and cancel on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('the next job of a key starts after the cancelled head\'s handler ended, well before its lease would', async () => {
    const log: string[] = [];
    const step = defineJob('step', {
      leaseMs: 30_000,
      // Ignores its signal: the worker hears of the cancel when the completion is refused.
      handler: async (p: { n: number }) => {
        log.push(`start ${p.n}`);
        await sleep(500);
        log.push(`end ${p.n}`);
      },
    });
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [step] });
    const first = await rebound.enqueue('step', { n: 1 }, { orderingKey: 'acct-1' });
    const second = await rebound.enqueue('step', { n: 2 }, { orderingKey: 'acct-1' });
    rebound.work({ concurrency: 4, pollIntervalMs: 20 });
    await waitFor(() => log.includes('start 1'));
    await rebound.cancel(first.id);
    await waitFor(async () => (await rebound.getJob(second.id))?.state === 'completed', 10_000);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });
});
