/**
 * Store reads a workflow relies on, on both stores: ctx.join reads all its
 * children in one listJobs, however many; an id that cannot name a job (beyond
 * PostgreSQL's bigint too) is not found.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, JobNotFoundError, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds } from './helpers/stores.ts';

describe.each(storeKinds)('workflow store reads on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('listJobs by ids takes more ids than SQLite has variables (ctx.join of 33,000 children)', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [defineJob('leaf', { handler: async () => 1 })] });
    const [a, b] = await Promise.all([rebound.enqueue('leaf', {}), rebound.enqueue('leaf', {})]);
    const ids = [...Array.from({ length: 33_000 }, (_, i) => String(1_000_000 + i)), b.id, a.id];
    const jobs = await rebound.store.listJobs({ ids, limit: ids.length });
    expect(jobs.map((j) => j.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('an id that cannot name a job, even one beyond bigint, is not found by workflow() and signal()', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [defineWorkflow('w', { run: async (ctx) => ctx.waitFor('go') })] });
    for (const id of ['abc', '1.5', '', '-1', '99999999999999999999', '9223372036854775808', '9223372036854775807']) {
      await expect(rebound.workflow(id), id).rejects.toBeInstanceOf(JobNotFoundError);
      await expect(rebound.signal(id, 'go'), id).rejects.toBeInstanceOf(JobNotFoundError);
    }
  });
});
