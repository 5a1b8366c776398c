/**
 * Rate and concurrency limits hold across two real worker processes; a retry
 * budget pushes retries out once a type's retries pass their share of attempts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, RetryableError, type Rebound, type ReboundEvents } from '../src/index.ts';
import { MAX_DURATION_MS } from '../src/config/options.ts';
import { backoffDelay, classifyError, DEFAULT_RETRY } from '../src/policies/retry.ts';
import { exited, startCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

const JOBS = fileURLToPath(new URL('./fixtures/self-healing-jobs.ts', import.meta.url));

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

describe.each(storeKinds)('limits across processes on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  // Leases of a minute: these tests count starts, and a worker stalled past a short lease by a loaded machine has
  // its job rescued and run again, by design (test/processes.test.ts covers that).
  const twoWorkers = async (ledger: string) => {
    const env = { LEDGER: ledger, FIXTURE_LEASE_MS: '60000' };
    const a = startCli(['worker', '--jobs', JOBS, '--store', url, '--concurrency', '4', '--drain'], env);
    const b = startCli(['worker', '--jobs', JOBS, '--store', url, '--concurrency', '4', '--drain'], env);
    expect(await exited(a)).toBe(0);
    expect(await exited(b)).toBe(0);
    return [a.pid, b.pid].map(String);
  };

  it('a rate limit holds across two processes, and the waiting jobs use no attempts', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    await rebound.enqueueMany(Array.from({ length: 9 }, () => ({ type: 'limited', payload: {} })));
    const pids = await twoWorkers(ledger);
    const starts = lines(ledger).filter((l) => l[0] === 'limited');
    expect(starts).toHaveLength(9);
    const times = starts.map((l) => Number(l[3])).sort((x, y) => x - y);
    // A bucket of 3 refilled at 3 per second: the k-th start (0-based) cannot come before (k - 2) / 3 s after the first
    // (less the gap between taking a token and writing the ledger line, which can differ between the two processes).
    times.forEach((t, k) => expect(t - times[0]).toBeGreaterThanOrEqual(((k - 2) * 1000) / 3 - 200));
    expect(times[8] - times[0]).toBeGreaterThanOrEqual(1800);
    for (const p of new Set(starts.map((l) => l[2]))) expect(pids).toContain(p);
    const jobs = await rebound.listJobs({ type: 'limited' });
    expect(jobs.every((j) => j.state === 'completed' && j.attempt === 1)).toBe(true);
  });

  it('a concurrency limit holds across two processes', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    await rebound.enqueueMany(Array.from({ length: 8 }, () => ({ type: 'capped', payload: {} })));
    await twoWorkers(ledger);
    const events = lines(ledger)
      .filter((l) => l[0] === 'start' || l[0] === 'end')
      .map((l) => ({ at: Number(l[3]), d: l[0] === 'start' ? 1 : -1 }))
      .sort((x, y) => x.at - y.at || x.d - y.d);
    let running = 0;
    let peak = 0;
    for (const e of events) peak = Math.max(peak, (running += e.d));
    if (events.filter((e) => e.d === 1).length !== 8) {
      // A job started twice: show the ledger and each job's history, to tell a rescue from a slot given twice.
      console.log(lines(ledger).map((l) => l.join(' ')).join('\n'));
      const ids = [...new Set(lines(ledger).filter((l) => l[0] === 'start').map((l) => l[1]))];
      for (const id of ids) console.log(id, JSON.stringify((await rebound.inspect(id)).history.map((h) => [h.kind, h.at, h.data])));
    }
    expect(events.filter((e) => e.d === 1)).toHaveLength(8);
    expect(peak).toBeLessThanOrEqual(2);
    expect(await rebound.countJobs({ type: 'capped', state: 'completed' })).toBe(8);
  });
});

describe.each(storeKinds)('limits in one process on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('jobs starting together take their tokens and slots together, every one counted', async () => {
    url = freshStoreUrl(kind);
    let running = 0;
    let peak = 0;
    const limited = defineJob('limited-together', {
      rateLimit: { max: 1000, perMs: 86_400_000, key: 'api' },
      concurrency: { max: 30, key: 'api' },
      handler: async () => {
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
      },
    });
    rebound = await createRebound({ store: url, jobs: [limited] });
    const limits = rebound.store.limits;
    const writes = { takeTokens: 0, acquireSlots: 0, releaseSlots: 0 };
    for (const name of Object.keys(writes) as (keyof typeof writes)[]) {
      const original = (limits[name] as (...a: unknown[]) => Promise<unknown>).bind(limits);
      (limits as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        writes[name]++;
        return original(...args);
      };
    }
    const jobs = 200;
    await rebound.enqueueMany(Array.from({ length: jobs }, () => ({ type: 'limited-together', payload: {} })));
    const worker = rebound.work({ concurrency: 50, pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ type: 'limited-together', state: 'completed' })) === jobs);
    await worker.stop();
    expect(peak).toBeLessThanOrEqual(30);
    // Each job that ran took one token (an attempt refused a slot takes none); the bucket refills by a day.
    expect((await limits.takeTokens({ key: 'rate:key:api', max: 1000, perMs: 86_400_000, now: Date.now() }, 1000)).taken).toBe(1000 - jobs);
    expect(await limits.slotsInUse()).toEqual({});
    // One write per job made processes sharing a key take turns at its lock, once per job.
    for (const [name, n] of Object.entries(writes)) expect(n, name).toBeLessThan(jobs / 2);
  });
});

describe.each(storeKinds)('concurrency slots on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('a handler that returns after its job was claimed again does not free the slot of the attempt now running', async () => {
    url = freshStoreUrl(kind);
    const started: number[] = [];
    let endFirst!: () => void;
    const firstHangs = new Promise<void>((r) => (endFirst = r));
    let endSecond!: () => void;
    const secondHangs = new Promise<void>((r) => (endSecond = r));
    const capped = defineJob('capped-late', {
      concurrency: { max: 1 },
      timeoutMs: 200,
      retry: { maxAttempts: 3, backoff: 'fixed', baseMs: 1, jitter: 'none' },
      // The first attempt ignores its abort and returns after its timeout, while the second runs.
      handler: async (_p, ctx) => {
        started.push(ctx.attempt);
        await (ctx.attempt === 1 ? firstHangs : secondHangs);
      },
    });
    rebound = await createRebound({ store: url, jobs: [capped] });
    const limits = rebound.store.limits;
    let released = 0;
    const release = limits.releaseSlots.bind(limits);
    limits.releaseSlots = async (...args) => {
      await release(...args);
      released++;
    };
    const { id } = await rebound.enqueue('capped-late', {});
    const worker = rebound.work({ concurrency: 4, pollIntervalMs: 20 });
    await waitFor(() => started.includes(2));
    expect(await limits.slotsInUse()).toEqual({ 'conc:type:capped-late': 1 });
    endFirst();
    await waitFor(() => released === 1);
    // The second attempt still holds the only slot: another job of the type may not start beside it.
    expect(await limits.slotsInUse()).toEqual({ 'conc:type:capped-late': 1 });
    endSecond();
    await waitFor(async () => (await rebound.store.getJob(id))?.state === 'completed');
    await worker.stop();
    expect(await limits.slotsInUse()).toEqual({});
  });
});

describe.each(storeKinds)('retry budget on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('retries beyond the budget are pushed out instead of piling on', async () => {
    url = freshStoreUrl(kind);
    const failing = defineJob('failing', {
      retry: { baseMs: 10, maxMs: 10, maxAttempts: 5 },
      retryBudget: { ratio: 0.2, minRetries: 2, windowMs: 60_000, deferMs: 30_000 },
      handler: async () => {
        throw new Error('downstream says no');
      },
    });
    rebound = await createRebound({ store: url, jobs: [failing] });
    const exhausted: ReboundEvents['retry_budget:exhausted'][] = [];
    rebound.events.on('retry_budget:exhausted', (e) => exhausted.push(e));
    const retries: number[] = [];
    rebound.events.on('job:retry', (e) => retries.push(e.delayMs));
    await rebound.enqueueMany(Array.from({ length: 6 }, () => ({ type: 'failing', payload: {} })));
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(() => retries.filter((d) => d >= 15_000).length >= 4);
    await worker.stop();
    // Two quick retries fit the budget; after that each retry waits at least deferMs / 2.
    expect(retries.filter((d) => d < 15_000).length).toBe(2);
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]).toMatchObject({ type: 'failing', deferMs: 30_000 });
    expect(rebound.limits.retryBudget('failing', { minRetries: 2 })).toMatchObject({ retries: 2 });
  });

  it('retries of attempts that timed out count against the budget too, even while their handlers hang on', async () => {
    url = freshStoreUrl(kind);
    const hung: Promise<unknown>[] = [];
    const slow = defineJob('slow', {
      timeoutMs: 30,
      retry: { baseMs: 10, maxMs: 10, maxAttempts: 5 },
      retryBudget: { ratio: 0.2, minRetries: 2, windowMs: 60_000, deferMs: 30_000 },
      // Ignores its abort signal: the attempt ends at its timeout, the handler a second later.
      handler: async () => {
        const p = sleep(1000);
        hung.push(p);
        await p;
      },
    });
    rebound = await createRebound({ store: url, jobs: [slow] });
    const retries: number[] = [];
    rebound.events.on('job:retry', (e) => retries.push(e.delayMs));
    await rebound.enqueueMany(Array.from({ length: 6 }, () => ({ type: 'slow', payload: {} })));
    const worker = rebound.work({ concurrency: 10, pollIntervalMs: 20 });
    await waitFor(() => retries.length >= 6);
    await worker.stop();
    await Promise.all(hung);
    expect(retries.filter((d) => d < 15_000).length).toBe(2);
    expect(retries.filter((d) => d >= 15_000).length).toBeGreaterThanOrEqual(4);
    expect(rebound.limits.retryBudget('slow', { minRetries: 2 })).toMatchObject({ retries: 2 });
  });
});

describe.each(storeKinds)('retry delays on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it("an error's retryAfterMs in fractions of a millisecond schedules its retry in whole ones", async () => {
    url = freshStoreUrl(kind);
    const polite = defineJob('polite', {
      retry: { maxAttempts: 3 },
      handler: async (_p, ctx) => {
        // As a Retry-After of 0.2505 s becomes once multiplied: PostgreSQL refused the run-at it made.
        if (ctx.attempt === 1) throw new RetryableError('slow down', { retryAfterMs: 250.5 });
      },
    });
    rebound = await createRebound({ store: url, jobs: [polite] });
    const errors: string[] = [];
    rebound.events.on('worker:error', (e) => errors.push(`${e.during}: ${(e.error as Error)?.message}`));
    const retries: number[] = [];
    rebound.events.on('job:retry', (e) => retries.push(e.delayMs));
    const { id } = await rebound.enqueue('polite', {});
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(async () => errors.length > 0 || (await rebound.store.getJob(id))?.state === 'completed');
    await worker.stop();
    expect(errors).toEqual([]);
    expect(retries).toEqual([251]);
    expect(await rebound.store.getJob(id)).toMatchObject({ state: 'completed', attempt: 2 });
    // The wait an error asks for is bounded like any stored delay (ten years), and a zero base backs off by zero.
    expect(classifyError(new RetryableError('later', { retryAfterMs: 1e300 })).retryAfterMs).toBe(MAX_DURATION_MS);
    expect(backoffDelay({ ...DEFAULT_RETRY, baseMs: 0, jitter: 'none' }, 2000)).toBe(0);
  });
});
