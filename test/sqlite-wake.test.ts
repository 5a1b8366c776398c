/**
 * On SQLite, a worker learns of a job that another process enqueued from the
 * file's write-ahead log, not only from its poll (src/store/sqlite/wal-watch.ts).
 * Its own writes do not wake it: engine.test.ts checks that it does not claim
 * again for every job it finishes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type Rebound } from '../src/index.ts';
import { runCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, sleep, waitFor } from './helpers/stores.ts';

describe('SQLite wake-ups across processes', () => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a job enqueued by another process starts at once, not at the next poll', async () => {
    url = freshStoreUrl('sqlite');
    const started: string[] = [];
    rebound = await createRebound({
      store: url,
      jobs: [defineJob('order', { handler: async (p: { orderId: string }) => void started.push(p.orderId) })],
    });
    let claims = 0;
    const claimJobs = rebound.store.claimJobs.bind(rebound.store);
    rebound.store.claimJobs = (p) => ((claims += 1), claimJobs(p));
    // A minute between polls: only a wake-up can end the dry spell that follows the first, empty claim.
    const worker = rebound.work({ pollIntervalMs: 60_000 });
    await waitFor(() => claims >= 1);
    await sleep(100);
    const enqueued = await runCli(['enqueue', 'order', '{"orderId":"o1","amount":5}', '--store', url]);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    await waitFor(() => started.length === 1, 15_000);
    expect(started).toEqual(['o1']);
    await worker.stop();
  });
});
