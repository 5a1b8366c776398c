/**
 * Per-key ordering through workers, on both stores: with several workers
 * claiming at once, the jobs of one key run strictly one after another in
 * enqueue order, while jobs of other keys run at the same time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('ordering keys through workers on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('jobs of one key run strictly in order under several concurrent workers, while other keys run in parallel', async () => {
    const running = new Map<string, number>();
    const log: { key: string; n: number; overlapOwnKey: boolean }[] = [];
    const started = new Set<string>();
    const step = defineJob('step', {
      handler: async (p: { key: string; n: number }) => {
        const own = running.get(p.key) ?? 0;
        running.set(p.key, own + 1);
        started.add(`${p.key}:${p.n}`);
        // The first job of each key waits until the first job of every other key has started:
        // this can only finish if different keys really run at the same time.
        if (p.n === 1) await waitFor(() => ['a', 'b', 'c'].every((k) => started.has(`${k}:1`)), 10_000, 5);
        await sleep(3);
        log.push({ key: p.key, n: p.n, overlapOwnKey: own > 0 });
        running.set(p.key, (running.get(p.key) ?? 1) - 1);
      },
    });
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [step] });
    const items = [];
    for (let n = 1; n <= 12; n++) for (const key of ['a', 'b', 'c']) items.push({ type: 'step', payload: { key, n }, opts: { orderingKey: `acct-${key}` } });
    await rebound.enqueueMany(items);
    for (let i = 0; i < 3; i++) rebound.work({ concurrency: 4, pollIntervalMs: 10 });
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 36, 30_000);
    expect(log.some((l) => l.overlapOwnKey)).toBe(false);
    for (const key of ['a', 'b', 'c']) {
      expect(log.filter((l) => l.key === key).map((l) => l.n)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    }
  });
});
