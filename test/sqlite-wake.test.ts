/**
 * SQLite has no notifications: a worker hears of jobs enqueued by another process through a watch of the
 * database's files (src/store/sqlite/new-jobs-watch.ts), and of nothing else that process writes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/open.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { createRebound, defineJob } from '../src/index.ts';
import { runCli } from './helpers/cli.ts';
import { freshStoreUrl, waitFor } from './helpers/stores.ts';
import { jobFactory } from './helpers/new-job.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opened: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function open(url = freshStoreUrl('sqlite')): Promise<{ store: SqliteStore; url: string; path: string }> {
  const store = (await openStore(url)) as SqliteStore;
  await store.migrate();
  opened.push(store);
  return { store, url, path: store.path };
}

describe('sqlite: wake-ups from other processes', () => {
  it('wakes a listener when another process enqueues, and not for that process\'s other writes', async () => {
    const { store, url, path } = await open();
    const heard: string[] = [];
    const stop = await store.onWake((q) => heard.push(q));
    opened.push({ close: stop });

    const other = new Database(path);
    opened.push({ close: () => void other.close() });
    // This process's own enqueue wakes its queue at once, and not again through the watch.
    const [job] = await store.insertJobs([jobFactory('email')()], Date.now());
    await waitFor(() => heard.includes('default'));
    // Another connection's writes that add no job (a heartbeat-like update, a delete of nothing) wake nobody.
    other.prepare('UPDATE jobs SET lease_expires_at = 1 WHERE id = ?').run(Number(job.job.id));
    other.prepare('DELETE FROM job_events WHERE job_id = -1').run();
    await sleep(300);
    expect(heard).toEqual(['default']);

    // Another process's enqueue does.
    const r = await runCli(['enqueue', 'hello', '{}', '--json'], { REBOUND_STORE: url });
    expect(r.code).toBe(0);
    await waitFor(() => heard.includes('*'), 10_000);
  });

  it("a job another connection committed just before this process's own enqueue still wakes everyone", async () => {
    const { store, path } = await open();
    const heard: string[] = [];
    const stop = await store.onWake((q) => heard.push(q));
    opened.push({ close: stop });
    const other = new Database(path);
    opened.push({ close: () => void other.close() });
    const now = Date.now();
    // Both commits land before the watch hears of either: the other job's id comes between the last id the
    // watch saw and this process's own, so the watch must not take the own enqueue's wake-up for both.
    other
      .prepare(
        `INSERT INTO jobs (type, queue, payload, payload_hash, priority, run_at, state, max_attempts, key_ttl_ms, created_at)
         VALUES ('email', 'elsewhere', '{}', '', 0, ?, 'available', 3, 0, ?)`,
      )
      .run(now, now);
    await store.insertJobs([jobFactory('email')()], now);
    await waitFor(() => heard.includes('*'));
    expect(heard).toContain('default');
  });

  it('a worker with a poll of a minute runs a job another process enqueued', async () => {
    const { url } = await open();
    const ran: unknown[] = [];
    const rebound = await createRebound({ store: url, jobs: [defineJob('hello', { handler: async (p) => void ran.push(p) })] });
    opened.push(rebound);
    const worker = rebound.work({ pollIntervalMs: 60_000 });
    opened.push({ close: () => worker.stop() });
    await sleep(200); // dry and asleep until the next poll, a minute away
    const r = await runCli(['enqueue', 'hello', '{"n": 1}', '--json'], { REBOUND_STORE: url });
    expect(r.code).toBe(0);
    await waitFor(() => ran.length === 1, 20_000);
    expect(ran).toEqual([{ n: 1 }]);
  });

  it('stops watching once the last listener stops, and on close', async () => {
    const { store } = await open();
    const stops = [await store.onWake(() => {}), await store.onWake(() => {})];
    const watch = () => (store as unknown as { newJobs: { watching: boolean } | null }).newJobs;
    expect(watch()?.watching).toBe(true);
    await stops[0]();
    expect(watch()?.watching).toBe(true);
    await stops[1]();
    expect(watch()).toBeNull();
    await store.onWake(() => {});
    await store.close();
    expect(watch()?.watching ?? false).toBe(false);
  });
});
