/**
 * SQLite has one write lock per file. A process whose write waits for another connection's transaction keeps
 * its event loop running (src/store/sqlite/write-lock.ts): the other connection here is driven by this process's
 * own timers, so a wait that blocked the thread could never end before its 10 s limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/open.ts';
import type { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { writeTransaction } from '../src/store/sqlite/write-lock.ts';
import { freshStoreUrl } from './helpers/stores.ts';
import { jobFactory } from './helpers/new-job.ts';

const opened: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function storeWithRival() {
  const store = (await openStore(freshStoreUrl('sqlite'))) as SqliteStore;
  opened.push(store);
  await store.migrate();
  const rival = new Database(store.path);
  opened.push({ close: () => void (rival.inTransaction && rival.exec('ROLLBACK'), rival.close()) });
  return { store, rival };
}

/** Counts timer ticks until stopped: how many ran shows whether the event loop was free. */
function ticker(everyMs = 10) {
  let ticks = 0;
  const t = setInterval(() => ticks++, everyMs);
  return { stop: () => (clearInterval(t), ticks) };
}

describe('sqlite: waiting for the write lock', () => {
  it('an enqueue waits for another connection\'s transaction with its event loop running, then commits', async () => {
    const { store, rival } = await storeWithRival();
    rival.exec('BEGIN IMMEDIATE');
    setTimeout(() => rival.exec('COMMIT'), 300);
    const ticks = ticker();
    const started = Date.now();
    const [ours] = await store.insertJobs([jobFactory('email')()], Date.now());
    const waited = Date.now() - started;
    const ran = ticks.stop();

    expect(ours!.inserted).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(250);
    // About 30 ticks in 300 ms; a blocked thread runs none until the wait ends.
    expect(ran).toBeGreaterThanOrEqual(10);
    expect((await store.listJobs({})).map((j) => j.type)).toEqual(['email']);
  });

  it('a write that cannot get the lock in time fails with SQLITE_BUSY without having run', async () => {
    const { store, rival } = await storeWithRival();
    rival.exec('BEGIN IMMEDIATE');
    let ran = false;
    const ticks = ticker();
    const db = (store as unknown as { db: Database.Database }).db;
    await expect(
      writeTransaction(db, () => {
        ran = true;
      }, 300),
    ).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    expect(ticks.stop()).toBeGreaterThanOrEqual(10);
    expect(ran).toBe(false);
    rival.exec('ROLLBACK');
    // The lock free again, the same write goes through at once.
    await writeTransaction(db, () => {
      ran = true;
    });
    expect(ran).toBe(true);
  });

  it('a worker\'s claim waits for the lock too, and runs the job once it is free', async () => {
    const { store, rival } = await storeWithRival();
    await store.insertJobs([jobFactory('email')()], Date.now());
    rival.exec('BEGIN IMMEDIATE');
    setTimeout(() => rival.exec('COMMIT'), 200);
    const ticks = ticker();
    const claimed = await store.claimJobs({
      workerId: 'w1', queues: ['default'], types: ['email'], limit: 10, leaseMs: 30_000, now: Date.now(), isolated: false,
    });
    expect(ticks.stop()).toBeGreaterThanOrEqual(5);
    expect(claimed.map((j) => j.type)).toEqual(['email']);
  });

  it('many writes waiting at once keep the event loop running, and commit in the order they were made', async () => {
    const { store, rival } = await storeWithRival();
    rival.exec('BEGIN IMMEDIATE');
    setTimeout(() => rival.exec('COMMIT'), 300);
    const ticks = ticker();
    // A worker's completions, heartbeats and claims, a handler's ctx.once: many writes of one process wait together.
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => store.insertJobs([jobFactory('email')({ payload: { n: i } })], Date.now())));
    const ran = ticks.stop();

    // Each waiting write spun in SQLite's busy handler on its own, one after another: the thread ran no timer for the whole wait.
    expect(ran).toBeGreaterThanOrEqual(10);
    const ids = answers.map(([a]) => Number(a!.job.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });
});
