/**
 * The chaos harness's wait for quiescence: a drain that keeps finishing jobs is waited for however long it
 * takes, and only a wait in which no job finishes is a stall.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { quiesce } from '../../chaos/harness.ts';
import { createRebound, defineJob, type Rebound } from '../../src/index.ts';
import { dropStore, freshStoreUrl, sleep, waitFor } from '../helpers/stores.ts';

describe('chaos quiescence', () => {
  let url: string;
  let rebound: Rebound | undefined;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('waits past its stall window while jobs keep finishing, and reports a stall when none does', async () => {
    url = freshStoreUrl('sqlite');
    rebound = await createRebound({ store: url, jobs: [defineJob('slow', { handler: () => sleep(250) })] });
    await rebound.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ type: 'slow', payload: { i } })));
    const worker = rebound.work({ concurrency: 1 });
    const lines: string[] = [];
    // From the first completion on, however slowly this machine starts the worker.
    await waitFor(async () => ((await rebound!.countByState()).completed ?? 0) >= 1, 30_000);
    const began = Date.now();
    // 11 more jobs of 250 ms one at a time take about 2.75 s: almost three stall windows. Before, the wait ended after one.
    expect(await quiesce(rebound, 1000, (l) => lines.push(l))).toBe(true);
    expect(Date.now() - began).toBeGreaterThan(2000);
    expect((await rebound.countByState()).completed).toBe(12);
    await worker.stop();

    // Nothing runs the next job: no job finishes within the window.
    await rebound.enqueue('slow', {});
    expect(await quiesce(rebound, 1000, (l) => lines.push(l))).toBe(false);
    expect(lines.at(-1)).toMatch(/quiescence timeout: no job finished for 1000 ms/);
  });
});
