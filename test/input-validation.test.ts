/**
 * Options are checked where they are given: a worker that would never run a
 * job, a definition whose timer would fire at once, a client built from a
 * mistyped key, each is refused with a typed error naming the field and the fix.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createRebound, defineJob, Supervisor, ValidationError, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl } from './helpers/stores.ts';
import { checkCoordinatorOptions, MAX_DEFAULT_LEASE_MS } from '../src/config/coordinator-options.ts';

const handler = async () => {};
const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function thrown(fn: () => unknown): Error & { field?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
}

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not reject');
}

/** Opens a fresh SQLite client with one job type; the describe block that calls it closes and removes it after each test. */
function freshClient(): () => Promise<Rebound> {
  let url = '';
  let rebound: Rebound | undefined;
  afterEach(async () => {
    await rebound?.close();
    rebound = undefined;
    await dropStore(url);
  });
  return async () => {
    url = freshStoreUrl('sqlite');
    rebound = await createRebound({ store: url, jobs: [defineJob('t', { handler })], logger: silent });
    return rebound;
  };
}

describe('rebound.work() options', () => {
  const open = freshClient();

  it.each([
    [{ concurrency: 0 }, 'options.concurrency', /from 1 to 10000/],
    [{ concurrency: -1 }, 'options.concurrency', /from 1 to 10000/],
    [{ concurrency: 'x' }, 'options.concurrency', /from 1 to 10000/],
    [{ concurrency: 1.5 }, 'options.concurrency', /integer/],
    [{ queues: 'default' }, 'options.queues', /array of queue names/],
    [{ queues: [] }, 'options.queues', /at least one queue/],
    [{ batchSize: 0 }, 'options.batchSize', /from 1/],
    [{ concurency: 5 }, 'options.concurency', /did you mean concurrency\?/],
    [{ pollIntervalMs: 2 ** 31 }, 'options.pollIntervalMs', /2147483647/],
    [{ shutdownGraceMs: -1 }, 'options.shutdownGraceMs', /from 0/],
  ])('refuses %j, naming %s, and starts no worker', async (options, field, message) => {
    const rebound = await open();
    const err = thrown(() => rebound.work(options as never));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('takes every option it documents', async () => {
    const rebound = await open();
    const worker = rebound.work({
      concurrency: 2,
      batchSize: 10,
      pollIntervalMs: 20,
      rescueIntervalMs: 1000,
      shutdownGraceMs: 0,
      drain: false,
      workerId: 'w-1',
    });
    expect(worker.id).toBe('w-1');
    await worker.stop();
    // The CLI passes the options it was not given as undefined.
    await rebound.work({ queues: undefined, drain: undefined }).stop();
  });
});

describe('coordination.start() options', () => {
  const open = freshClient();

  it.each([
    [{ retention: { completedMs: Infinity } }, 'options.retention.completedMs', /ten years/],
    [{ retention: { completedMs: -1 } }, 'options.retention.completedMs', /from 0/],
    [{ retention: { dedMs: 1000 } }, 'options.retention.dedMs', /did you mean retention.deadMs\?/],
    [{ tickMs: 0 }, 'options.tickMs', /from 1/],
    [{ pruneBatchSize: 0 }, 'options.pruneBatchSize', /from 1 to 100000/],
    [{ leasMs: 5000 }, 'options.leasMs', /did you mean leaseMs\?/],
    // A failover takes up to leaseMs, a third of it more until a follower tries again, and tickMs (1000 by default).
    [{ misfireGraceMs: 20_999 }, 'options.misfireGraceMs', /shorter than a leader failover can take \(21000 ms: leaseMs 15000.*at least 21000/],
    [{ leaseMs: 90_000 }, 'options.misfireGraceMs', /failover can take \(121000 ms/],
    [{ leaseMs: 3000, tickMs: 5000, misfireGraceMs: 8999 }, 'options.misfireGraceMs', /failover can take \(9000 ms/],
  ])('refuses %j, naming %s, and starts nothing', async (options, field, message) => {
    const rebound = await open();
    const err = thrown(() => rebound.coordination.start(options as never));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('takes a grace that covers a failover: equal to it, or longer', async () => {
    const rebound = await open();
    const coordinator = rebound.coordination.start({ leaseMs: 2000, misfireGraceMs: 2000 + 666 + 1000 });
    expect((coordinator as unknown as { graceMs: number }).graceMs).toBe(3666);
    // The longest lease the defaults allow, which the CLI's --leader-lease-ms takes at most.
    expect(() => checkCoordinatorOptions({ leaseMs: MAX_DEFAULT_LEASE_MS })).not.toThrow();
    expect(() => checkCoordinatorOptions({ leaseMs: MAX_DEFAULT_LEASE_MS + 1 })).toThrow(/failover can take \(60001 ms/);
    await coordinator.stop();
  });

  it('an age given as undefined keeps the default for that state', async () => {
    const rebound = await open();
    const coordinator = rebound.coordination.start({ retention: { completedMs: 1000, deadMs: undefined } });
    expect((coordinator as unknown as { pruner: { policy: object } }).pruner.policy).toEqual({ completedMs: 1000, deadMs: 30 * 86_400_000, cancelledMs: 7 * 86_400_000 });
    await coordinator.stop();
  });
});

describe('defineJob options', () => {
  it.each([
    [{ maxAttempts: 3 }, 'defineJob("t").maxAttempts', /did you mean retry\.maxAttempts\?/],
    [{ timeout: 1000 }, 'defineJob("t").timeout', /did you mean timeoutMs\?/],
    [{ retry: { maxAttemps: 3 } }, 'defineJob("t").retry.maxAttemps', /did you mean retry\.maxAttempts\?/],
    [{ timeoutMs: 2 ** 31 }, 'defineJob("t").timeoutMs', /2147483647/],
    [{ leaseMs: 2 ** 31 }, 'defineJob("t").leaseMs', /2147483647/],
    [{ priority: 2 ** 40 }, 'defineJob("t").priority', /from -1000000 to 1000000/],
    [{ priority: 1.5 }, 'defineJob("t").priority', /integer/],
    [{ queue: 'a\u0000b' }, 'defineJob("t").queue', /U\+0000/],
    [{ retry: { maxAttempts: 2 ** 40 } }, 'defineJob("t").retry.maxAttempts', /from 1 to 10000/],
    [{ keyTtlMs: 1e300 }, 'defineJob("t").keyTtlMs', /ten years/],
  ])('refuses %j, naming %s', (options, field, message) => {
    const err = thrown(() => defineJob('t', { handler, ...options } as never));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('takes the longest timer Node keeps, and a definition given back to createRebound', async () => {
    const def = defineJob('t', { handler, timeoutMs: 2_147_483_647, leaseMs: 2_147_483_647, priority: -1_000_000, queue: 'q' });
    expect(def).toMatchObject({ timeoutMs: 2_147_483_647, leaseMs: 2_147_483_647, priority: -1_000_000, queue: 'q' });
    const url = freshStoreUrl('sqlite');
    const rebound = await createRebound({ store: url, jobs: [def], logger: silent });
    expect(rebound.definitions.get('t')?.queue).toBe('q');
    await rebound.close();
  });
});

describe('createRebound options', () => {
  it.each([
    [{ store: 42 }, 'options.store: must be a store URL'],
    [{ store: '' }, 'options.store: must be a store URL'],
    [{ jobs: [null] }, 'options.jobs.0: must be a defineJob(...) result'],
    [{ jobs: 'x' }, 'options.jobs: must be an array'],
    [{ now: 5 }, 'options.now: must be a function'],
    [{ job: [] }, 'options.job: unknown option; did you mean jobs?'],
    [{ queues: 'x' }, 'options.queues: must be an object of queue limits'],
    [{ queues: { bulk: { maxDepth: 0 } } }, 'options.queues.bulk.maxDepth: must be a positive integer'],
    [{ logger: {} }, 'options.logger: must be a logger'],
    [{ migrate: 'no' }, 'options.migrate'],
    [{ audit: { sealIntervalMs: 2 ** 31 } }, 'options.audit.sealIntervalMs: must be whole milliseconds'],
  ])('refuses %j with a ConfigError naming the field', async (options, message) => {
    const err = await rejected(createRebound(options as never));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`createRebound: ${message}`);
  });

  it('refuses a SQLite file it cannot use with a ConfigError naming the path and the cause, and leaves the file as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rebound-open-'));
    const damaged = join(dir, 'damaged.db');
    const bytes = randomBytes(8192);
    writeFileSync(damaged, bytes);
    const notADir = join(dir, 'plain-file');
    writeFileSync(notADir, 'x');
    try {
      const a = await rejected(createRebound({ store: `sqlite:${damaged}` }));
      expect(a).toBeInstanceOf(ConfigError);
      expect(a.message).toMatch(new RegExp(`cannot open the SQLite store at ${damaged}: .*not a SQLite database`));
      expect(readFileSync(damaged).equals(bytes)).toBe(true);
      const b = await rejected(createRebound({ store: `sqlite:${join(notADir, 'x.db')}` }));
      expect(b).toBeInstanceOf(ConfigError);
      expect(b.message).toMatch(/cannot open the SQLite store at .*plain-file\/x\.db: .*give a writable path/);
      // A directory no file system lets it make: Node 20's recursive mkdir never returned for it (it spun at 90 % CPU).
      const c = await rejected(createRebound({ store: 'sqlite:/proc/rebound-nope/deeper/x.db' }));
      expect(c).toBeInstanceOf(ConfigError);
      expect(c.message).toMatch(/cannot open the SQLite store at \/proc\/rebound-nope\/deeper\/x\.db: ENOENT.*give a writable path/);
      // Missing directories are still made, however deep.
      const deep = await createRebound({ store: `sqlite:${join(dir, 'a', 'b', 'c', 'x.db')}` });
      await deep.close();
      expect(existsSync(join(dir, 'a', 'b', 'c', 'x.db'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('superviseWorkers() options', () => {
  it.each([
    [{ processes: 0 }, 'processes', /from 1 to 256/],
    [{ restartBaseMs: 0 }, 'restartBaseMs', /from 10/],
    [{ restartBaseMs: 1000, restartMaxMs: 500 }, 'restartMaxMs', /at least restartBaseMs \(1000 ms\)/],
    [{ timeoutGraceMs: -1 }, 'timeoutGraceMs', /from 0/],
    [{ crashLoop: { crashes: 0, withinMs: 1000 } }, 'crashLoop.crashes', /from 1/],
    [{ restartMaxMS: 500 }, 'restartMaxMS', /did you mean restartMaxMs\?/],
  ])('refuses %j, naming %s, and starts no process', (options, field, message) => {
    const err = thrown(() => new Supervisor({ jobsFile: 'jobs.ts', processes: 1, ...options } as never));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe('operator calls', () => {
  const open = freshClient();

  it('refuse an actor a store cannot keep, naming opts.actor, and change nothing', async () => {
    const rebound = await open();
    const { id } = await rebound.enqueue('t', {});
    for (const actor of ['ops\u0000bot', '', 'x'.repeat(201), 42]) {
      const opts = { actor } as never;
      for (const call of [() => rebound.cancel(id, opts), () => rebound.redrive({ ids: [id] }, opts), () => rebound.purge({ ids: [id] }, opts), () => rebound.signal(id, 'go', null, opts)]) {
        const err = await rejected(call());
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).field).toBe('opts.actor');
      }
    }
    expect((await rebound.getJob(id))?.state).toBe('available');
    expect((await rebound.cancel(id, { actor: 'ops-bot' })).state).toBe('cancelled');
  });
});

describe('enqueue inputs', () => {
  const open = freshClient();

  it('runAt takes only an ISO 8601 date-time with its zone among strings; nothing is stored for the others', async () => {
    const rebound = await open();
    for (const runAt of ['5', 'soon', '2030-01-31T09:00', 'May 1, 2030']) {
      const err = await rejected(rebound.enqueue('t', {}, { runAt }));
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('options.runAt');
      expect(err.message).toMatch(/ISO 8601/);
    }
    expect(await rebound.countJobs()).toBe(0);
    const { job } = await rebound.enqueue('t', {}, { runAt: '2030-01-31T09:00:00+01:00' });
    expect(job.runAt).toBe(Date.UTC(2030, 0, 31, 8));
  });

  it('runAt refuses a day its month does not have, rather than rolling it into the next month', async () => {
    const rebound = await open();
    for (const runAt of ['2030-02-31T09:00:00Z', '2030-04-31', '2031-02-29T00:00:00+01:00']) {
      const err = await rejected(rebound.enqueue('t', {}, { runAt }));
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('options.runAt');
      expect(err.message).toMatch(/not a day of the calendar/);
    }
    expect(await rebound.countJobs()).toBe(0);
    expect((await rebound.enqueue('t', {}, { runAt: '2032-02-29T09:00:00Z' })).job.runAt).toBe(Date.UTC(2032, 1, 29, 9));
  });

  it.each([
    [{ waitForRoomMs: -1 }, 'options.waitForRoomMs', /from 0 to 3600000/],
    [{ queue: 'bulk' }, 'options.queue', /unknown option; the options are tx, waitForRoomMs; an item's own options go in its opts/],
  ])("enqueueMany's own options: refuses %j and stores nothing", async (opts, field, message) => {
    const rebound = await open();
    const err = await rejected(rebound.enqueueMany([{ type: 't', payload: {} }], opts as never));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(err.message).toMatch(message);
    expect(await rebound.countJobs()).toBe(0);
  });
});
