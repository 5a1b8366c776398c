/**
 * Hand-off through real workers on PostgreSQL (src/runtime/handoff.ts): an
 * idle worker takes a lone new job without a claim; a worker killed with its
 * offer open, a notification that never arrives and a stop with a handed job
 * not yet fetched each lose nothing and run nothing twice.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createRebound, defineJob, type Rebound, type ReboundOptions } from '../src/index.ts';
import { exited, FIXTURE_JOBS, startCli } from './helpers/cli.ts';
import { databaseUrl, dropStore, freshStoreUrl, waitFor } from './helpers/stores.ts';
import { HandoffClient } from '../src/runtime/handoff.ts';
import { openStore } from '../src/store/open.ts';
import { holdListenerLock } from '../src/store/postgres/handoff.ts';
import { jobFactory } from './helpers/new-job.ts';

describe('hand-off on postgres', () => {
  let url: string;
  let rebound: Rebound;
  let db: pg.Client;
  const children: ReturnType<typeof startCli>[] = [];
  const open = async (jobs: ReboundOptions['jobs'] = []) => {
    url = freshStoreUrl('postgres');
    rebound = await createRebound({ store: url, jobs });
    db = new pg.Client({ connectionString: databaseUrl() });
    await db.connect();
    return rebound;
  };
  const schema = () => new URL(url).searchParams.get('schema')!;
  const offers = async () =>
    (await db.query<{ worker_id: string; slots: number }>(`SELECT worker_id, slots FROM "${schema()}".job_offers WHERE slots > 0`)).rows;
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await db?.end();
    await dropStore(url);
  });

  it('an idle worker takes a lone new job without a claim, and runs it once', async () => {
    const runs: string[] = [];
    const r = await open([defineJob('ping', { handler: async (_p, ctx) => void runs.push(ctx.jobId) })]);
    const w = r.work({ concurrency: 4 });
    await waitFor(async () => (await offers()).some((o) => o.worker_id === w.id && o.slots === 4));
    const e = await r.enqueue('ping', {});
    expect(e.state).toBe('running');
    expect(e.job.leaseOwner).toBe(w.id);
    await waitFor(async () => (await r.getJob(e.id))?.state === 'completed');
    expect(runs).toEqual([e.id]);
    expect(await r.getJob(e.id)).toMatchObject({ attempt: 1, leaseToken: 1 });
    // A burst too large for the offer: the rest waits for a claim, and each job still runs once.
    const burst = await Promise.all(Array.from({ length: 30 }, () => r.enqueue('ping', {})));
    await waitFor(async () => (await r.countJobs({ state: 'completed' })) === 31);
    expect(runs.sort()).toEqual([e.id, ...burst.map((b) => b.id)].sort());
    await w.stop();
    expect(await offers()).toEqual([]);
  });

  const ledgerEnv = () => {
    const ledger = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
    writeFileSync(ledger, '');
    return { ledger, env: { LEDGER: ledger, REBOUND_LOG_LEVEL: 'info', REBOUND_LOG_FORMAT: 'json' } };
  };
  const cliWorker = (env: Record<string, string>) => {
    const child = startCli(['worker', '--jobs', FIXTURE_JOBS, '--store', url, '--concurrency', '4'], env);
    children.push(child);
    return child;
  };
  const starts = (ledger: string, id: string) => readFileSync(ledger, 'utf8').split('\n').filter((l) => l.startsWith(`start ${id} `));
  /** A fresh store and a connection holding a listener's lock; `client()` makes a HandoffClient on it that records its deliveries and errors. */
  const bareHandoff = async () => {
    url = freshStoreUrl('postgres');
    const store = await openStore(url);
    await store.migrate();
    db = new pg.Client({ connectionString: databaseUrl() });
    await db.connect();
    const listener = await holdListenerLock(db);
    const delivered: string[] = [];
    const errors: unknown[] = [];
    const client = () => {
      const c = new HandoffClient({
        store: store.handoff!,
        workerId: 'w1',
        now: Date.now,
        held: () => new Set(),
        deliver: (jobs) => delivered.push(...jobs.map((j) => j.id)),
        canSweep: () => true,
        onError: (error) => errors.push(error),
      });
      c.listening(listener);
      return c;
    };
    return { store, listener, delivered, errors, client };
  };
  const theOffer = async () => {
    type Offer = { worker_id: string; listener_pid: number };
    const sql = `SELECT worker_id, listener_pid FROM "${schema()}".job_offers`;
    return waitFor(async () => (await db.query<Offer>(sql)).rows[0]);
  };

  it('a worker killed with SIGKILL is handed nothing once the database saw its connection close; the job runs once elsewhere', async () => {
    const r = await open();
    const { ledger, env } = ledgerEnv();
    const doomed = cliWorker(env);
    const offer = await theOffer();
    doomed.kill('SIGKILL');
    await exited(doomed);
    await waitFor(async () => (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [offer.listener_pid])).rowCount === 0);
    // Its offer has not lapsed, but nobody is listening for it.
    const e = await r.enqueue('record', { ms: 5 });
    expect(e.state).toBe('available');
    const heir = cliWorker(env);
    await waitFor(async () => (await r.getJob(e.id))?.state === 'completed', 30_000);
    expect(starts(ledger, e.id).map((l) => l.split(' ')[2])).toEqual([String(heir.pid)]);
    expect((await r.inspect(e.id)).history.map((ev) => ev.kind)).not.toContain('lease_expired');
  });

  it('a job handed to a frozen worker (SIGSTOP) runs once, on another worker, after its lease expires', async () => {
    const r = await open();
    const { ledger, env } = ledgerEnv();
    const frozen = cliWorker(env);
    const offer = await theOffer();
    frozen.kill('SIGSTOP');
    // Its connection stays open and its offer has not lapsed: the job goes to it, and waits for its lease.
    const e = await r.enqueue('record', { ms: 5 });
    expect(e.job).toMatchObject({ state: 'running', leaseOwner: offer.worker_id });
    const heir = cliWorker(env);
    await waitFor(async () => (await r.getJob(e.id))?.state === 'completed', 30_000);
    expect((await r.inspect(e.id)).history.map((ev) => ev.kind)).toContain('lease_expired');
    // Thawed, it hears the notification of a hand-off whose lease lapsed long ago: it leaves the job (its
    // renewal fails) and says so in the job's history, instead of running it a second time.
    frozen.kill('SIGCONT');
    const lostByFrozen = async () => (await r.inspect(e.id)).history.some((ev) => ev.kind === 'lease_lost' && ev.worker === offer.worker_id);
    await waitFor(async () => starts(ledger, e.id).length > 1 || (await lostByFrozen()), 30_000);
    expect(starts(ledger, e.id).map((l) => l.split(' ')[2])).toEqual([String(heir.pid)]);
    expect(await lostByFrozen()).toBe(true);
  });

  it('two worker processes share two producers\' lone enqueues by hand-off and claim, and run each job once', async () => {
    const r = await open();
    const other = await createRebound({ store: url });
    const { ledger, env } = ledgerEnv();
    // Leases of a minute: this test is about hand-off and claim sharing jobs out once. With the fixtures' half
    // second, a worker that a loaded machine stalls that long has its jobs rescued and run again (the stall
    // case, which ctx.once is for; the frozen-worker tests cover it). CI saw that twice.
    const workers = [cliWorker({ ...env, FIXTURE_LEASE_MS: '60000' }), cliWorker({ ...env, FIXTURE_LEASE_MS: '60000' })];
    await waitFor(async () => (await db.query(`SELECT 1 FROM "${schema()}".job_offers`)).rowCount === 2);
    // Each producer enqueues 100 jobs one after another (concurrent enqueues of one process share a
    // group commit, which hands nothing over); the two race for the offers.
    const produce = async (p: Rebound) => {
      const out: { id: string; handed: boolean }[] = [];
      for (let i = 0; i < 100; i++) {
        const e = await p.enqueue('record', { ms: 2 });
        out.push({ id: e.id, handed: e.state === 'running' });
      }
      return out;
    };
    const results = (await Promise.all([produce(r), produce(other)])).flat();
    await other.close();
    await waitFor(async () => (await r.countJobs({ state: 'completed' })) === 200, 30_000);
    const lines = readFileSync(ledger, 'utf8').split('\n').filter((l) => l.startsWith('start '));
    const started = lines.map((l) => l.split(' ')[1]);
    const twice = [...new Set(started.filter((id, i) => started.indexOf(id) !== i))];
    // On a failure, the story of each job run twice: its ledger lines and its history.
    const ledgerOf = (id: string) => readFileSync(ledger, 'utf8').split('\n').filter((l) => l.split(' ')[1] === id);
    const stories = await Promise.all(twice.map(async (id) => ({ id, ledger: ledgerOf(id), history: (await r.inspect(id)).history })));
    expect(started.sort(), JSON.stringify(stories, null, 1)).toEqual(results.map((e) => e.id).sort());
    expect(results.filter((e) => e.handed).length).toBeGreaterThan(0);
    expect(lines.every((l) => workers.some((w) => l.split(' ')[2] === String(w.pid)))).toBe(true);
  });

  it('a hand-off whose notification never arrives is found by the offer count, and runs once', async () => {
    const runs: string[] = [];
    const r = await open([defineJob('ping', { handler: async (_p, ctx) => void runs.push(ctx.jobId) })]);
    const w = r.work({ concurrency: 4, batchSize: 10, pollIntervalMs: 200 });
    await waitFor(async () => (await offers()).length === 1);
    // First a hand-off that is heard, then a backlog (claims come back full: the offer is withdrawn, and
    // offered again, counting from 0, once the worker is idle): the count must still be read right.
    const heard = await r.enqueue('ping', {});
    expect(heard.state).toBe('running');
    const backlog = await r.enqueueMany(Array.from({ length: 101 }, () => ({ type: 'ping', payload: {} })));
    await waitFor(async () => (await r.countJobs({ state: 'completed' })) === 102);
    await waitFor(async () => (await offers()).length === 1);
    // Drop the insert trigger's notifications: the hand-off happens, nobody is told.
    await db.query(`ALTER TABLE "${schema()}".jobs DISABLE TRIGGER jobs_inserted`);
    const e = await r.enqueue('ping', {});
    expect(e.state).toBe('running');
    await waitFor(async () => (await r.getJob(e.id))?.state === 'completed', 15_000);
    expect(runs.sort()).toEqual([heard.id, ...backlog.map((b) => b.id), e.id].sort());
    await w.stop();
  });

  it('a short claim shrinks the offer to the slots left free, so every job handed over can start', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const r = await open([
      defineJob('ping', {
        handler: async (_p, ctx) => {
          started.push(ctx.jobId);
          await blocked;
        },
      }),
    ]);
    // Offers live three minutes (3 × pollIntervalMs): none is renewed for its age during the test.
    const w = r.work({ concurrency: 3, pollIntervalMs: 60_000 });
    const slots = async () => (await offers()).find((o) => o.worker_id === w.id)?.slots;
    await waitFor(async () => (await slots()) === 3);
    // A keyed job is never handed over: the worker claims it, and the claim comes back short.
    const claimed = await r.enqueue('ping', {}, { idempotencyKey: 'k1' });
    await waitFor(() => started.includes(claimed.id));
    await waitFor(async () => (await slots()) === 2);
    const burst = await r.enqueueMany(Array.from({ length: 3 }, () => ({ type: 'ping', payload: {} })));
    expect(burst.map((b) => b.state)).toEqual(['running', 'running', 'available']);
    await waitFor(() => started.length === 3);
    release();
    await waitFor(async () => (await r.countJobs({ state: 'completed' })) === 4);
    await w.stop();
  });

  it('an offer of more slots than are free is renewed with the free ones, and withdrawn when none are', async () => {
    const h = await bareHandoff();
    const { store, errors } = h;
    const client = h.client();
    const slots = async () => (await db.query<{ slots: number }>(`SELECT slots FROM "${schema()}".job_offers`)).rows.map((o) => o.slots);
    // The worker calls keep() each time it looks at its work while idle; so does this test, until the row shows it.
    const keepUntil = (free: number, expected: number[]) =>
      waitFor(async () => {
        client.keep({ free, queues: ['default'], types: ['ping'], leaseMs: 60_000, ttlMs: 60_000 });
        return JSON.stringify(await slots()) === JSON.stringify(expected);
      });
    await keepUntil(3, [3]);
    await keepUntil(2, [2]);
    await keepUntil(0, []);
    await client.close();
    await store.close();
    expect(errors).toEqual([]);
  });

  it('a hand-off whose notification is lost while the worker works through a backlog is swept when a claim settles, not left to its lease', async () => {
    const runs: string[] = [];
    let lostRan!: () => void;
    const lostRun = new Promise<void>((resolve) => (lostRan = resolve));
    let lostId = '';
    const r = await open([
      defineJob('ping', {
        leaseMs: 60_000,
        handler: async (_p, ctx) => {
          runs.push(ctx.jobId);
          if (ctx.jobId === lostId) lostRan();
        },
      }),
    ]);
    // Offers live three minutes: no renewal reads the count during the test.
    const w = r.work({ concurrency: 4, batchSize: 2, pollIntervalMs: 60_000 });
    await waitFor(async () => (await offers()).length === 1);
    await db.query(`ALTER TABLE "${schema()}".jobs DISABLE TRIGGER jobs_inserted`);
    const lost = await r.enqueue('ping', {});
    lostId = lost.id;
    expect(lost.state).toBe('running');
    // The test holds the order of events: the withdrawal after the first full claim reads the count while the
    // second claim is out (so the sweep must wait for it), and the third claim stays out until the lost job has
    // run. The worker is never idle meanwhile, so only a settled claim can let the sweep go.
    const store = r.store;
    const claim = store.claimJobs.bind(store);
    const withdraw = store.handoff!.withdraw.bind(store.handoff);
    let secondOut!: () => void;
    const second = new Promise<void>((resolve) => (secondOut = resolve));
    let countRead!: () => void;
    const counted = new Promise<void>((resolve) => (countRead = resolve));
    let claims = 0;
    let withdrawals = 0;
    store.claimJobs = async (p) => {
      const n = ++claims;
      if (n === 2) {
        secondOut();
        await counted;
        await new Promise((resolve) => setImmediate(resolve)); // the worker has compared the count by now
      }
      if (n >= 3) await lostRun;
      return claim(p);
    };
    store.handoff!.withdraw = async (workerId) => {
      const handed = await withdraw(workerId);
      if (++withdrawals === 1) {
        await second;
        countRead();
      }
      return handed;
    };
    try {
      // A bulk load (by COPY: nothing handed over), and its wake-up by hand, since the trigger is off.
      const backlog = await r.enqueueMany(Array.from({ length: 101 }, () => ({ type: 'ping', payload: {} })));
      await db.query('SELECT pg_notify($1, $2)', [`rebound_${schema()}`, 'default']);
      await waitFor(async () => (await r.getJob(lost.id))?.state === 'completed');
      expect(await r.getJob(lost.id)).toMatchObject({ attempt: 1, leaseToken: 1 });
      await waitFor(async () => (await r.countJobs({ state: 'completed' })) === 102);
      expect(runs.sort()).toEqual([lost.id, ...backlog.map((b) => b.id)].sort());
    } finally {
      lostRan();
    }
    await w.stop();
  });

  it('a listener that replaces a lost connection sweeps for the hand-offs whose notifications went with it', async () => {
    const h = await bareHandoff();
    const { store, listener, delivered } = h;
    const client = h.client();
    client.keep({ free: 2, queues: ['default'], types: ['ping'], leaseMs: 60_000, ttlMs: 60_000 });
    await waitFor(async () => (await offers()).length === 1);
    // Handed, and its notification lost with the connection. The worker is busy: it does not offer again.
    const [handed] = await store.insertJobs([jobFactory('ping')({ runAt: Date.now() })], Date.now());
    expect(handed.job.state).toBe('running');
    client.listening(null);
    client.listening(listener);
    await waitFor(() => delivered.length === 1);
    expect(delivered).toEqual([handed.job.id]);
    await client.close();
    await store.close();
  });

  it('a worker that stops with a handed job it has not fetched gives it back uncharged', async () => {
    const runs: string[] = [];
    const r = await open([defineJob('ping', { handler: async (_p, ctx) => void runs.push(ctx.jobId) })]);
    const listener = await holdListenerLock(db);
    await r.store.handoff!.offer({ workerId: 'w-stop', listener, queues: ['default'], types: ['ping'], slots: 1, leaseMs: 30_000, ttlMs: 60_000, now: Date.now() });
    const e = await r.enqueue('ping', {});
    expect(e.job.leaseOwner).toBe('w-stop');
    // The worker starts after the notification went out and stops before it could look for the job.
    const w = r.work({ workerId: 'w-stop' });
    await w.stop();
    expect(runs).toEqual([]);
    expect(await r.getJob(e.id)).toMatchObject({ state: 'available', attempt: 0 });
    expect((await r.inspect(e.id)).history.map((ev) => ev.kind)).toContain('released');
    expect(await offers()).toEqual([]);
  });

  it('a job a sweep delivered is not delivered again by its late notification, even after it finished', async () => {
    const { store, delivered, errors, client: handoffClient } = await bareHandoff();
    const client = handoffClient();
    const wanted = (free: number) => ({ free, queues: ['default'], types: ['ping'], leaseMs: 60_000, ttlMs: 60_000 });
    client.keep(wanted(2));
    await waitFor(async () => (await offers()).length === 1);
    // Handed while no notification reaches the client: the next renewal sees the count ahead and sweeps.
    const [handed] = await store.insertJobs([jobFactory('ping')({ runAt: Date.now() })], Date.now());
    expect(handed.job.state).toBe('running');
    client.keep(wanted(10));
    await waitFor(() => delivered.length === 1);
    // It ran and finished; then its notification arrives, carrying the job as it was handed.
    await store.completeJobs([{ id: handed.job.id, token: 1, result: null }], Date.now());
    client.handed(handed.job.id, 'w1', handed.job);
    await new Promise((r) => setTimeout(r, 200));
    await client.close();
    expect(delivered).toEqual([handed.job.id]);
    // A notification with its job for a job no sweep has seen is delivered at once, without a fetch.
    const second = handoffClient();
    second.handed('999999', 'w1', { ...handed.job, id: '999999' });
    expect(delivered).toEqual([handed.job.id, '999999']);
    await second.close();
    expect(errors).toEqual([]);
    await store.close();
  });
});
