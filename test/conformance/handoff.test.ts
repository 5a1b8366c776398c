/**
 * Hand-off (src/store/handoff.ts): an idle worker's offer, and the lone
 * enqueue that hands its job straight to it. PostgreSQL has it; SQLite has no
 * cross-process notification to tell a worker, so it declares none and every
 * insert stays a plain one there.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Job, NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import type { HandoffStore, JobOffer } from '../../src/store/handoff.ts';
import { holdListenerLock } from '../../src/store/postgres/handoff.ts';
import { leaseExpiredError } from '../../src/engine/error-info.ts';
import { databaseUrl, dropStore, freshStoreUrl, waitFor } from '../helpers/stores.ts';
import { jobFactory, T0 } from '../helpers/new-job.ts';

const newJob = jobFactory('email');
/** The backend pid of a live listening connection: offers need one (JobOffer.listener). */
let live = 0;
const offer = (over: Partial<JobOffer> = {}): JobOffer => ({
  workerId: 'w1',
  listener: live,
  queues: ['default'],
  types: ['email'],
  slots: 2,
  leaseMs: 5000,
  ttlMs: 3000,
  now: T0,
  ...over,
});

describe('hand-off: sqlite', () => {
  it('declares no hand-off, so a lone insert waits for a claim', async () => {
    const url = freshStoreUrl('sqlite');
    const s = await openStore(url);
    await s.migrate();
    expect(s.handoff).toBeUndefined();
    const [r] = await s.insertJobs([newJob()], T0);
    expect(r.job.state).toBe('available');
    expect((await s.getJob(r.job.id))?.leaseOwner).toBeNull();
    await s.close();
  });
});

describe('hand-off: postgres', () => {
  const opened: { store: Store; url: string }[] = [];
  const clients: pg.Client[] = [];
  /** A new connection and its backend pid. */
  const connect = async () => {
    const c = new pg.Client({ connectionString: databaseUrl() });
    await c.connect();
    clients.push(c);
    return { c, pid: await holdListenerLock(c) };
  };
  beforeEach(async () => {
    live = (await connect()).pid;
  });
  const open = async (url = freshStoreUrl('postgres')) => {
    const store = await openStore(url);
    await store.migrate();
    opened.push({ store, url });
    return { s: store, h: store.handoff as HandoffStore, url };
  };
  afterEach(async () => {
    const urls = new Set(opened.map((o) => o.url));
    for (const o of opened.splice(0)) await o.store.close();
    for (const url of urls) await dropStore(url);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
  });

  it('hands a lone due job to an idle worker, leased under token 1 and completable with it', async () => {
    const { s, h } = await open();
    expect(await h.offer(offer())).toBe(0);
    const [r] = await s.insertJobs([newJob()], T0 + 10);
    expect(r.job).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseOwner: 'w1', leaseExpiresAt: T0 + 10 + 5000, startedAt: T0 + 10 });
    expect(await s.getJob(r.job.id)).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseOwner: 'w1', leaseExpiresAt: T0 + 10 + 5000 });
    // Nothing is left for a claim, and the renewal reports the hand-off.
    expect(await s.claimJobs({ workerId: 'w2', queues: ['default'], types: ['email'], limit: 10, leaseMs: 1000, now: T0 + 20 })).toEqual([]);
    expect(await h.offer(offer({ now: T0 + 30 }))).toBe(1);
    expect(await s.completeJobs([{ id: r.job.id, token: 1, result: { ok: true } }], T0 + 40)).toEqual([true]);
    expect(await s.getJob(r.job.id)).toMatchObject({ state: 'completed', result: { ok: true } });
  });

  it('hands over only due jobs of an offered queue and type, without key or ordering, from inserts of up to 100', async () => {
    const { s, h } = await open();
    await h.offer(offer({ slots: 10 }));
    const states = async (jobs: NewJob[]) => (await s.insertJobs(jobs, T0)).map((r) => r.job.state);
    expect(await states([newJob({ runAt: T0 + 5000 })])).toEqual(['scheduled']);
    expect(await states([newJob({ type: 'sms' })])).toEqual(['available']);
    expect(await states([newJob({ queue: 'bulk' })])).toEqual(['available']);
    expect(await states([newJob({ idempotencyKey: 'k1' })])).toEqual(['available']);
    expect(await states([newJob({ orderingKey: 'o1' })])).toEqual(['available']);
    // A bulk load is not handed over, even with slots to spare.
    expect(new Set(await states(Array.from({ length: 101 }, () => newJob())))).toEqual(new Set(['available']));
    expect(await states([newJob()])).toEqual(['running']);
    // In a group, the matching due jobs go over in order; the others stay plain.
    expect(await states([newJob({ type: 'sms' }), newJob(), newJob({ runAt: T0 + 5000 }), newJob()])).toEqual([
      'available',
      'running',
      'scheduled',
      'running',
    ]);
    expect(await s.countJobs({ state: 'running' })).toBe(3);
    expect(await h.offer(offer({ slots: 10, now: T0 + 1 }))).toBe(3);
  });

  it('a group gets at most the offer\'s slots, in a claim\'s order (priority, run-at, then input), with ids and leases that match its rows', async () => {
    const { s, h } = await open();
    await h.offer(offer({ slots: 3 }));
    const jobs = [{}, {}, { priority: -1 }, { runAt: T0 - 10 }, { priority: 1 }].map((over, i) => newJob({ ...over, payload: { i } }));
    const inserted = await s.insertJobs(jobs, T0);
    // A claim would take the third, the fourth (due first), then the first (input order breaks the tie).
    expect(inserted.map((r) => r.job.state)).toEqual(['running', 'available', 'running', 'running', 'available']);
    for (const [i, r] of inserted.entries()) {
      expect(await s.getJob(r.job.id)).toMatchObject({ payload: { i }, state: r.job.state, leaseOwner: r.job.leaseOwner, leaseToken: r.job.leaseToken });
    }
    expect(await s.insertJobs([newJob()], T0).then(([r]) => r.job.state)).toBe('available');
  });

  it('hands over at most the offered slots, and nothing once the offer lapsed or was withdrawn', async () => {
    const { s, h } = await open();
    await h.offer(offer({ slots: 2 }));
    const one = async (now = T0) => (await s.insertJobs([newJob()], now))[0].job.state;
    expect([await one(), await one(), await one()]).toEqual(['running', 'running', 'available']);
    await h.offer(offer({ slots: 5, ttlMs: 1000 }));
    expect(await one(T0 + 999)).toBe('running');
    expect(await one(T0 + 1000)).toBe('available');
    await h.offer(offer({ slots: 5, now: T0 + 2000 }));
    await h.withdraw('w1');
    expect(await one(T0 + 2001)).toBe('available');
  });

  it('never hands more jobs than slots to concurrent enqueues, and counts each', async () => {
    const { s, h, url } = await open();
    const { s: other } = await open(url);
    await h.offer(offer({ slots: 5 }));
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? s : other).insertJobs([newJob()], T0)));
    const running = results.filter(([r]) => r.job.state === 'running').length;
    expect(running).toBeGreaterThan(0);
    expect(running).toBeLessThanOrEqual(5);
    expect(await s.countJobs({ state: 'running' })).toBe(running);
    expect(await s.countJobs({})).toBe(40);
    expect(await h.offer(offer({ now: T0 + 1 }))).toBe(running);
  });

  /** Listens as a worker does, recording the queues woken, the hand-offs heard and the listening connections. */
  const listen = async (s: Store) => {
    const handed: [string, string][] = [];
    const woken: string[] = [];
    const listening: (number | null)[] = [];
    const stop = await s.onWake((q) => woken.push(q), {
      handed: (jobId, workerId) => handed.push([jobId, workerId]),
      listening: (pid) => listening.push(pid),
    });
    return { handed, woken, listening, stop };
  };

  it('tells the listeners which job went to which worker; a plain insert still wakes its queue', async () => {
    const { s, h } = await open();
    const { handed, woken, listening, stop } = await listen(s);
    expect(listening).toEqual([expect.any(Number)]);
    await h.offer(offer({ workerId: 'worker:with spaces?', slots: 1, listener: listening[0]! }));
    const [a] = await s.insertJobs([newJob()], T0);
    const [b] = await s.insertJobs([newJob()], T0);
    await waitFor(() => handed.length === 1 && woken.includes('default'));
    expect(handed).toEqual([[a.job.id, 'worker:with spaces?']]);
    expect(b.job.state).toBe('available');
    await stop();
  });

  it('wakes a queue named like a hand-off notification, and tells nobody it was handed a job', async () => {
    const { s, h } = await open();
    const { handed, woken, listening, stop } = await listen(s);
    // A queue's name is any text: these look like the two forms of a hand-off's notification.
    const queues = ['@1 w1', '#{"w": "w1", "j": {"id": 1}}'];
    for (const queue of queues) await s.insertJobs([newJob({ queue })], T0);
    await waitFor(() => queues.every((q) => woken.includes(q)));
    await h.offer(offer({ slots: 1, listener: listening[0]! }));
    const [real] = await s.insertJobs([newJob()], T0);
    await waitFor(() => handed.length > 0);
    expect(handed).toEqual([[real.job.id, 'w1']]);
    await stop();
  });

  it("a hand-off's notification carries the job as stored, unless it is too large for one", async () => {
    const { s, h } = await open();
    const handed: [string, string, Job | undefined][] = [];
    const listening: (number | null)[] = [];
    const stop = await s.onWake(() => {}, {
      handed: (jobId, workerId, job) => handed.push([jobId, workerId, job]),
      listening: (pid) => listening.push(pid),
    });
    await h.offer(offer({ workerId: 'wörker "1"', slots: 2, listener: listening[0]! }));
    const traceContext = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const payload = { to: 'ü@example.com', nested: { list: [1, null, 'tab\there', { deep: true }] }, big: 2 ** 52 };
    const [small] = await s.insertJobs([newJob({ payload, priority: 3, maxAttempts: 7, traceContext })], T0);
    // A payload that does not fit in a notification (8,000 bytes at most): the job is named, not carried.
    const [large] = await s.insertJobs([newJob({ payload: { blob: 'x'.repeat(10_000) } })], T0);
    await waitFor(() => handed.length === 2);
    await stop();
    expect(handed.map(([id, worker, job]) => [id, worker, job === undefined])).toEqual([
      [small.job.id, 'wörker "1"', false],
      [large.job.id, 'wörker "1"', true],
    ]);
    expect(handed[0][2]).toEqual(await s.getJob(small.job.id));
    expect(handed[0][2]).toMatchObject({ state: 'running', leaseToken: 1, payload, traceContext, priority: 3, maxAttempts: 7 });
  });

  it('hands nothing to an offer whose listening connection has closed', async () => {
    const { s, h } = await open();
    const { c, pid } = await connect();
    await h.offer(offer({ listener: pid, slots: 5 }));
    expect((await s.insertJobs([newJob()], T0))[0].job.state).toBe('running');
    await c.end();
    const { c: probe } = await connect();
    await waitFor(async () => (await probe.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0);
    expect((await s.insertJobs([newJob()], T0))[0].job.state).toBe('available');
    // Another worker's live offer still takes the next one.
    await h.offer(offer({ workerId: 'w2' }));
    expect((await s.insertJobs([newJob()], T0))[0].job).toMatchObject({ state: 'running', leaseOwner: 'w2' });
  });

  it('hands nothing to an offer whose pid is a live connection that is not listening (a pid reused)', async () => {
    const { s, h } = await open();
    const plain = new pg.Client({ connectionString: databaseUrl() });
    await plain.connect();
    clients.push(plain);
    const pid = (await plain.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await h.offer(offer({ listener: pid, slots: 5 }));
    expect((await s.insertJobs([newJob()], T0))[0].job.state).toBe('available');
    // The same session takes the listener lock: from then on it is one.
    await holdListenerLock(plain);
    expect((await s.insertJobs([newJob()], T0))[0].job).toMatchObject({ state: 'running', leaseOwner: 'w1' });
  });

  it('lists the jobs handed to a worker and still leased to it, leaving out those it holds', async () => {
    const { s, h } = await open();
    await h.offer(offer({ slots: 3 }));
    const [[a], [b], [c]] = [await s.insertJobs([newJob()], T0), await s.insertJobs([newJob()], T0), await s.insertJobs([newJob()], T0)];
    const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id);
    expect(ids(await h.handedJobs('w1', { except: [] }))).toEqual([a.job.id, b.job.id, c.job.id]);
    expect(ids(await h.handedJobs('w1', { except: [a.job.id] }))).toEqual([b.job.id, c.job.id]);
    expect(ids(await h.handedJobs('w1', { only: [c.job.id, 'not-an-id'], except: [] }))).toEqual([c.job.id]);
    expect(await h.handedJobs('w2', { except: [] })).toEqual([]);
    await s.completeJobs([{ id: b.job.id, token: 1, result: null }], T0 + 1);
    expect(ids(await h.handedJobs('w1', { except: [] }))).toEqual([a.job.id, c.job.id]);
    // The full job comes back: payload and all.
    expect((await h.handedJobs('w1', { only: [a.job.id], except: [] }))[0]).toMatchObject({ type: 'email', queue: 'default', leaseToken: 1 });
  });

  it('a job handed to a worker that died is rescued when its lease expires, and a claim runs it under a new token', async () => {
    const { s, h } = await open();
    await h.offer(offer({ workerId: 'dead-worker', leaseMs: 1000 }));
    const [r] = await s.insertJobs([newJob()], T0);
    expect(r.job.leaseOwner).toBe('dead-worker');
    const rescued = await s.rescueExpiredLeases({
      now: T0 + 1001,
      limit: 10,
      decide: (job) => ({ kind: 'requeue', error: leaseExpiredError(job.type, job.leaseOwner), crashes: job.crashCount + 1, isolate: false }),
    });
    expect(rescued.requeued).toEqual([r.job.id]);
    const [again] = await s.claimJobs({ workerId: 'w2', queues: ['default'], types: ['email'], limit: 10, leaseMs: 1000, now: T0 + 1002 });
    expect(again).toMatchObject({ id: r.job.id, leaseToken: 2, attempt: 2, leaseOwner: 'w2' });
    // Its old holder can no longer finish it.
    expect(await s.completeJobs([{ id: r.job.id, token: 1, result: null }], T0 + 1003)).toEqual([false]);
  });
});
