/**
 * The store conformance suite: the same guarantees, checked unchanged against
 * every store. A new store is done when this file passes for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { leaseExpiredError } from '../../src/engine/error-info.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';
import { jobFactory, T0 } from '../helpers/new-job.ts';

const baseJob = jobFactory('email');
const newJob = (over: Partial<NewJob> = {}) => baseJob({ payload: { to: 'a@example.com' }, payloadHash: 'h1', ...over });

const error = { kind: 'transient', name: 'Error', message: 'boom', fingerprint: 'fp1' };

describe.each(storeKinds)('store conformance: %s', (kind) => {
  let url: string;
  let store: Store;
  const open = async () => {
    url = freshStoreUrl(kind);
    store = await openStore(url);
    await store.migrate();
    return store;
  };
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  const claim = (s: Store, over: Partial<Parameters<Store['claimJobs']>[0]> = {}) =>
    s.claimJobs({ workerId: 'w1', queues: ['default'], types: ['email'], limit: 10, leaseMs: 1000, now: T0, ...over });

  it('migrations are idempotent and safe to run concurrently', async () => {
    const s = await open();
    const other = await openStore(url);
    await Promise.all([s.migrate(), other.migrate(), s.migrate()]);
    await other.close();
    expect(await s.countJobs({})).toBe(0);
  });

  it('claims due jobs in priority, run-at, id order with a fresh token', async () => {
    const s = await open();
    const [a, b, c, d] = await s.insertJobs(
      [newJob({ priority: 5 }), newJob({ priority: 1, runAt: T0 - 10 }), newJob({ priority: 1 }), newJob({ runAt: T0 + 5000 })],
      T0,
    );
    expect(d.job.state).toBe('scheduled');
    expect(a.job.state).toBe('available');
    const claimed = await claim(s);
    expect(claimed.map((j) => j.id)).toEqual([b.job.id, c.job.id, a.job.id]);
    expect(claimed.every((j) => j.state === 'running' && j.attempt === 1 && j.leaseToken === 1 && j.leaseOwner === 'w1')).toBe(true);
    expect(claimed[0].leaseExpiresAt).toBe(T0 + 1000);
    expect(await claim(s)).toEqual([]);
    const later = await claim(s, { now: T0 + 5000 });
    expect(later.map((j) => j.id)).toEqual([d.job.id]);
  });

  it('a claimed job is the stored job as the claim left it, every field', async () => {
    const s = await open();
    const [parent] = await s.insertJobs([newJob()], T0);
    const traceContext = JSON.stringify({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    await s.insertJobs(
      [newJob({ priority: 3, idempotencyKey: 'k1', parentId: parent.job.id, maxAttempts: 7, traceContext, payload: { to: 'b', n: [1, { x: null }] } })],
      T0,
    );
    await s.insertJobs([newJob({ priority: 4, orderingKey: 'account-1' })], T0);
    const claimed = await claim(s);
    expect(claimed).toHaveLength(3);
    for (const job of claimed) expect(job).toEqual(await s.getJob(job.id));
    expect(claimed[1]).toMatchObject({ priority: 3, idempotencyKey: 'k1', parentId: parent.job.id, maxAttempts: 7, traceContext, isolated: false });
    expect(claimed[2]).toMatchObject({ orderingKey: 'account-1', orderingSeq: expect.any(Number) });
  });

  it('claims only the queues and types asked for', async () => {
    const s = await open();
    await s.insertJobs([newJob({ queue: 'other' }), newJob({ type: 'sms' }), newJob()], T0);
    const claimed = await claim(s);
    expect(claimed).toHaveLength(1);
    expect(claimed[0].type).toBe('email');
    expect(claimed[0].queue).toBe('default');
  });

  it('concurrent claims never hand out the same job twice', async () => {
    const s = await open();
    await s.insertJobs(Array.from({ length: 200 }, () => newJob()), T0);
    const others = [await openStore(url), await openStore(url)];
    const rounds = await Promise.all(
      [s, ...others].flatMap((st, i) => Array.from({ length: 5 }, () => claim(st, { workerId: `w${i}`, limit: 15 }))),
    );
    await Promise.all(others.map((o) => o.close()));
    const ids = rounds.flat().map((j) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(200);
  });

  it('only the current lease token can complete, fail or heartbeat a job', async () => {
    const s = await open();
    await s.insertJobs([newJob()], T0);
    const [first] = await claim(s);
    const rescued = await s.rescueExpiredLeases({ now: T0 + 2000, limit: 10, decide: (j) => ({ kind: 'requeue', error: leaseExpiredError(j.type, j.leaseOwner), crashes: j.crashCount + 1, isolate: false }) });
    expect(rescued.requeued).toEqual([first.id]);
    const [second] = await claim(s, { workerId: 'w2', now: T0 + 2000 });
    expect(second.id).toBe(first.id);
    expect(second.leaseToken).toBe(first.leaseToken + 1);
    expect(second.attempt).toBe(2);

    const stale = { id: first.id, token: first.leaseToken };
    expect(await s.completeJobs([{ ...stale, result: 'stale' }], T0 + 2100)).toEqual([false]);
    expect(await s.failJob({ ...stale, now: T0 + 2100, outcome: { kind: 'dead', reason: 'permanent', error } })).toBe(false);
    expect(await s.heartbeatJobs([stale], 1000, T0 + 2100)).toEqual([]);
    expect(await s.releaseJobs([stale], T0 + 2100)).toEqual([]);

    expect(await s.completeJobs([{ id: second.id, token: second.leaseToken, result: { ok: 1 } }], T0 + 2200)).toEqual([true]);
    const done = await s.getJob(first.id);
    expect(done).toMatchObject({ state: 'completed', result: { ok: 1 }, finishedAt: T0 + 2200, crashCount: 1 });
  });

  it('a completion batch commits the leases it holds and refuses the others, entry by entry', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob()], T0);
    const [a, b] = await claim(s);
    const batch = [
      { id: a.id, token: a.leaseToken + 1, result: 'not issued' }, // a token no claim gave out
      { id: a.id, token: a.leaseToken, result: 'a' },
      { id: b.id, token: b.leaseToken, result: 'b' },
    ];
    // One answer per entry, in order: the same job under a token it does not hold is refused, under its own accepted.
    expect(await s.completeJobs(batch, T0 + 10)).toEqual([false, true, true]);
    expect(await s.getJob(a.id)).toMatchObject({ state: 'completed', result: 'a' });
    expect(await s.getJob(b.id)).toMatchObject({ state: 'completed', result: 'b' });
    // Completed jobs hold no lease: the same batch again is refused whole.
    expect(await s.completeJobs(batch, T0 + 20)).toEqual([false, false, false]);
  });

  it('heartbeats extend the lease so a live job is not rescued', async () => {
    const s = await open();
    await s.insertJobs([newJob()], T0);
    const [j] = await claim(s);
    expect(await s.heartbeatJobs([{ id: j.id, token: j.leaseToken }], 1000, T0 + 900)).toEqual([{ id: j.id, token: j.leaseToken }]);
    const decide = () => ({ kind: 'requeue' as const, error, crashes: 1, isolate: false });
    expect((await s.rescueExpiredLeases({ now: T0 + 1500, limit: 10, decide })).requeued).toEqual([]);
    expect((await s.rescueExpiredLeases({ now: T0 + 2000, limit: 10, decide })).requeued).toEqual([j.id]);
  });

  it('records a retry with its delay and error, and a death with its reason and fingerprint', async () => {
    const s = await open();
    await s.insertJobs([newJob()], T0);
    const [j] = await claim(s);
    expect(await s.failJob({ id: j.id, token: j.leaseToken, now: T0 + 10, outcome: { kind: 'retry', runAt: T0 + 510, delayMs: 500, error } })).toBe(true);
    expect(await s.getJob(j.id)).toMatchObject({ state: 'scheduled', runAt: T0 + 510, lastError: { message: 'boom' } });
    const [j2] = await claim(s, { now: T0 + 600 });
    await s.failJob({ id: j2.id, token: j2.leaseToken, now: T0 + 700, outcome: { kind: 'dead', reason: 'permanent', error } });
    expect(await s.getJob(j.id)).toMatchObject({ state: 'dead', deadReason: 'permanent', finishedAt: T0 + 700 });
    const events = await s.getEvents(j.id);
    expect(events.map((e) => e.kind)).toEqual(['retry_scheduled', 'dead']);
    expect(events[0]).toMatchObject({ attempt: 1, worker: 'w1', data: { delayMs: 500, startedAt: T0 } });
    expect(events[1]).toMatchObject({ attempt: 2, data: { reason: 'permanent', startedAt: T0 + 600 } });
    expect(events[0].seq).toBeLessThan(events[1].seq);
    expect(await s.listJobs({ state: 'dead', fingerprint: 'fp1' })).toHaveLength(1);
  });

  it('releases a job without charging the attempt', async () => {
    const s = await open();
    await s.insertJobs([newJob()], T0);
    const [j] = await claim(s);
    expect(await s.releaseJobs([{ id: j.id, token: j.leaseToken }], T0 + 5)).toEqual([j.id]);
    expect(await s.getJob(j.id)).toMatchObject({ state: 'available', attempt: 0 });
    expect((await s.getEvents(j.id)).map((e) => e.kind)).toEqual(['released']);
  });

  it('rescue applies the decision: requeue or dead, with the crash count and isolation decided', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob()], T0);
    const [a, b] = await claim(s);
    const seen: boolean[] = [];
    const r = await s.rescueExpiredLeases({
      now: T0 + 5000,
      limit: 10,
      decide: (j, crash) => {
        seen.push(crash.alone);
        return j.id === a.id
          ? { kind: 'requeue', error, crashes: 0, isolate: true }
          : { kind: 'dead', reason: 'poison', error: { ...error, fingerprint: 'fp-poison' }, crashes: 4 };
      },
    });
    // Both jobs belonged to worker w1: neither crash is a solo one.
    expect(seen).toEqual([false, false]);
    expect(r).toEqual({ requeued: [a.id], dead: [b.id] });
    expect(await s.getJob(a.id)).toMatchObject({ state: 'available', crashCount: 0, isolated: true, deadReason: null, finishedAt: null, leaseExpiresAt: null, lastError: { message: 'boom' } });
    expect(await s.getJob(b.id)).toMatchObject({ state: 'dead', deadReason: 'poison', crashCount: 4, isolated: false, finishedAt: T0 + 5000, leaseExpiresAt: null, lastError: { fingerprint: 'fp-poison' } });
    // The dead letter queue finds it by its fingerprint (the error_fingerprint column).
    expect((await s.listJobs({ state: 'dead', fingerprint: 'fp-poison' })).map((j) => j.id)).toEqual([b.id]);
    expect((await s.getEvents(a.id))[0]).toMatchObject({ kind: 'lease_expired', attempt: 1, worker: 'w1', data: { isolated: true, crashCount: 0, startedAt: T0 } });
    expect((await s.getEvents(b.id))[0]).toMatchObject({ kind: 'lease_expired', attempt: 1, worker: 'w1', data: { deadReason: 'poison', crashCount: 4 } });
  });

  it('a dead worker\'s jobs whose leases end at different times are none of them alone', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob(), newJob()], T0);
    const [short] = await claim(s, { limit: 1, leaseMs: 1000 });
    const [long] = await claim(s, { limit: 1, leaseMs: 4000 });
    const alone = new Map<string, boolean>();
    const rescue = (now: number) =>
      s.rescueExpiredLeases({ now, limit: 10, decide: (j, crash) => (alone.set(j.id, crash.alone), { kind: 'requeue', error, crashes: 0, isolate: !crash.alone }) });
    // The short lease ends first: the long one still runs under w1.
    expect(await rescue(T0 + 2000)).toEqual({ requeued: [short.id], dead: [] });
    // The long one ends later: w1 lost the short one after it started.
    expect(await rescue(T0 + 5000)).toEqual({ requeued: [long.id], dead: [] });
    expect(Object.fromEntries(alone)).toEqual({ [short.id]: false, [long.id]: false });
    // A job w1 took after those rescues, alone on it when it expires, is blamed.
    const [later] = await claim(s, { now: T0 + 6000, limit: 1 });
    await rescue(T0 + 8000);
    expect(alone.get(later.id)).toBe(true);
  });

  it('jobs to run alone are claimed only by an isolated claim, one at a time; redrive clears the mark', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob()], T0);
    const [a, b] = await claim(s, { limit: 2 });
    await s.rescueExpiredLeases({ now: T0 + 5000, limit: 10, decide: (_j, crash) => ({ kind: 'requeue', error, crashes: crash.alone ? 1 : 0, isolate: !crash.alone }) });
    expect(await s.hasIsolatedJobs(['default'], ['email'], T0 + 5000)).toBe(true);
    expect(await claim(s, { now: T0 + 5000 })).toEqual([]);
    const [alone] = await claim(s, { now: T0 + 5000, isolated: true, limit: 10 });
    expect([a.id, b.id]).toContain(alone.id);
    expect(alone.isolated).toBe(true);
    expect(await claim(s, { now: T0 + 5000, isolated: true, workerId: 'w2' })).toHaveLength(1);
    expect(await s.hasIsolatedJobs(['default'], ['email'], T0 + 5000)).toBe(false);
    // A job alone on its worker: the crash is its own.
    const decided: boolean[] = [];
    await s.rescueExpiredLeases({ now: T0 + 9000, limit: 10, decide: (j, crash) => (decided.push(crash.alone), { kind: 'dead', reason: 'poison', error, crashes: 1 }) });
    expect(decided).toEqual([true, true]);
    expect(await s.redriveDead({ all: true }, 'op', T0 + 9001)).toHaveLength(2);
    expect((await s.listJobs({ state: 'available' })).every((j) => !j.isolated)).toBe(true);
  });

  it('idempotency keys: one job per live key, freed after the key expires', async () => {
    const s = await open();
    const [a, b, c] = await s.insertJobs(
      [newJob({ idempotencyKey: 'k1' }), newJob({ idempotencyKey: 'k1', payloadHash: 'h2' }), newJob({ idempotencyKey: 'k2' })],
      T0,
    );
    expect(a.inserted).toBe(true);
    expect(b).toMatchObject({ inserted: false, payloadHash: 'h1' });
    expect(b.job.id).toBe(a.job.id);
    expect(c.inserted).toBe(true);
    const [j] = await claim(s, { limit: 1 });
    await s.completeJobs([{ id: j.id, token: j.leaseToken, result: 42 }], T0 + 100);
    const again = await s.insertJobs([newJob({ idempotencyKey: 'k1' })], T0 + 200);
    expect(again[0]).toMatchObject({ inserted: false, job: { id: a.job.id, state: 'completed', result: 42 } });
    // keyTtlMs is 60 s after completion.
    const fresh = await s.insertJobs([newJob({ idempotencyKey: 'k1' })], T0 + 100 + 60_000);
    expect(fresh[0].inserted).toBe(true);
    expect(fresh[0].job.id).not.toBe(a.job.id);
  });

  it('allOrNothing: a key held with another payload stores none of the batch; the same payload is answered by its job', async () => {
    const s = await open();
    const [held] = await s.insertJobs([newJob({ idempotencyKey: 'k1' })], T0);
    const batch = [newJob(), newJob({ idempotencyKey: 'k2', orderingKey: 'o1' }), newJob({ idempotencyKey: 'k1', payloadHash: 'h2' })];
    const err = await s.insertJobs(batch, T0, undefined, { allOrNothing: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'idempotency_conflict', key: 'k1', existingJobId: held.job.id });
    expect(await s.countJobs({})).toBe(1);
    batch[2] = newJob({ idempotencyKey: 'k1' });
    const stored = await s.insertJobs(batch, T0, undefined, { allOrNothing: true });
    expect(stored.map((r) => r.inserted)).toEqual([true, true, false]);
    expect(stored[2].job.id).toBe(held.job.id);
    expect(await s.countJobs({})).toBe(3);
  });

  it('concurrent inserts with one key from many connections create exactly one job', async () => {
    const s = await open();
    const stores = [s, await openStore(url), await openStore(url)];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % 3].insertJobs([newJob({ idempotencyKey: 'same' })], T0)),
    );
    await Promise.all(stores.slice(1).map((o) => o.close()));
    expect(new Set(results.map((r) => r[0].job.id)).size).toBe(1);
    expect(results.filter((r) => r[0].inserted)).toHaveLength(1);
    expect(await s.countJobs({})).toBe(1);
  });

  it('concurrent batches sharing new keys in opposite orders all succeed, one job per key', async () => {
    const s = await open();
    const other = await openStore(url);
    // Big batches, and group-commit-sized ones racing in shuffled orders: each caller gets the one job of each of its keys.
    const race = async (round: number, size: number, callers: number) => {
      const keys = Array.from({ length: size }, (_, i) => `r${round}-k${i}`);
      const orders = Array.from({ length: callers }, (_, c) => (c % 2 ? [...keys].reverse() : [...keys].sort(() => Math.random() - 0.5)));
      const results = await Promise.all(
        orders.map((ks, c) => (c % 2 ? other : s).insertJobs(ks.map((k) => newJob({ idempotencyKey: k, payload: { k } })), T0)),
      );
      const rows = await s.listJobs({ limit: 10 * size });
      const byKey = new Map(rows.filter((j) => j.payload && (j.payload as { k: string }).k.startsWith(`r${round}-`)).map((j) => [(j.payload as { k: string }).k, j.id]));
      expect(byKey.size).toBe(size);
      results.forEach((r, c) => expect(r.map((x) => x.job.id)).toEqual(orders[c].map((k) => byKey.get(k))));
      expect(results.flat().filter((x) => x.inserted)).toHaveLength(size);
    };
    try {
      for (let round = 0; round < 3; round++) await race(round, 1000, 2);
      for (let round = 3; round < 8; round++) await race(round, 40, 6);
      expect(await s.countJobs({})).toBe(3 * 1000 + 5 * 40);
    } finally {
      await other.close();
    }
  }, 60_000);

  it('once-results are stored once per job and key', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    expect(await s.getOnce(job.id, 'charge')).toBeNull();
    expect(await s.putOnce(job.id, 'charge', { receipt: 'r1' }, T0)).toEqual({ receipt: 'r1' });
    // A second executor's value does not replace the first, and it is told the first.
    expect(await s.putOnce(job.id, 'charge', { receipt: 'r2' }, T0)).toEqual({ receipt: 'r1' });
    expect(await s.getOnce(job.id, 'charge')).toEqual({ value: { receipt: 'r1' } });
  });

  it('cancel takes the lease away from a running job; finished jobs cannot be cancelled', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob()], T0);
    const [a] = await claim(s, { limit: 1 });
    const cancelled = await s.cancelJob(a.id, 'op', T0 + 1);
    expect(cancelled).toMatchObject({ job: { state: 'cancelled' }, descendants: [] });
    expect(await s.completeJobs([{ id: a.id, token: a.leaseToken, result: null }], T0 + 2)).toEqual([false]);
    expect(await s.cancelJob(a.id, 'op', T0 + 3)).toBeNull();
    expect((await s.getEvents(a.id)).at(-1)).toMatchObject({ kind: 'cancelled', data: { actor: 'op' } });
  });

  it('cancel takes the unfinished descendants with it, in the same transaction, and leaves finished ones', async () => {
    const s = await open();
    const ids = async (jobs: NewJob[]) => (await s.insertJobs(jobs, T0)).map((r) => r.job);
    const [root] = await ids([newJob()]);
    const [child, done, other] = await ids([newJob({ parentId: root.id }), newJob({ parentId: root.id }), newJob()]);
    const [grandchild] = await ids([newJob({ parentId: child.id })]);
    const [running] = await claim(s, { limit: 1 }); // the root: the oldest
    expect(running.id).toBe(root.id);
    await s.cancelJob(done.id, 'op', T0 + 1); // finished before the root's cancel
    const cancelled = await s.cancelJob(root.id, 'alice', T0 + 2);
    expect(cancelled?.job).toMatchObject({ id: root.id, state: 'cancelled' });
    expect(cancelled?.descendants.map((j) => j.id).sort()).toEqual([child.id, grandchild.id].sort());
    for (const id of [child.id, grandchild.id]) {
      expect(await s.getJob(id)).toMatchObject({ state: 'cancelled', finishedAt: T0 + 2 });
      expect((await s.getEvents(id)).at(-1)).toMatchObject({ kind: 'cancelled', data: { actor: 'alice', ancestor: root.id } });
    }
    expect((await s.getEvents(done.id)).filter((e) => e.kind === 'cancelled')).toHaveLength(1);
    expect(await s.getJob(other.id)).toMatchObject({ state: 'available' });
    expect(await s.completeJobs([{ id: root.id, token: running.leaseToken, result: null }], T0 + 3)).toEqual([false]);
  });

  it('redrive and purge act on the dead letter queue by selection only', async () => {
    const s = await open();
    await s.insertJobs([newJob(), newJob(), newJob({ type: 'sms' })], T0);
    const jobs = await claim(s, { types: ['email', 'sms'] });
    for (const j of jobs) {
      await s.failJob({ id: j.id, token: j.leaseToken, now: T0 + 1, outcome: { kind: 'dead', reason: 'permanent', error: { ...error, fingerprint: j.type } } });
    }
    expect(await s.redriveDead({}, 'op', T0 + 2)).toEqual([]);
    const redriven = await s.redriveDead({ type: 'sms' }, 'op', T0 + 2);
    expect(redriven).toHaveLength(1);
    expect(await s.getJob(redriven[0])).toMatchObject({ state: 'available', attempt: 0, deadReason: null });
    expect(await s.purgeDead({ fingerprint: 'nope' })).toBe(0);
    expect(await s.purgeDead({ fingerprint: 'email' })).toBe(2);
    expect(await s.countJobs({})).toBe(1);
    expect(await s.countByState()).toEqual({ available: 1 });
  });

  it('reports the next run-at of waiting work', async () => {
    const s = await open();
    expect(await s.nextRunAt(['default'], ['email'])).toBeNull();
    await s.insertJobs([newJob({ runAt: T0 + 300 }), newJob({ runAt: T0 + 100 })], T0);
    expect(await s.nextRunAt(['default'], ['email'])).toBe(T0 + 100);
  });

  it('a bulk insert stores every job as given, in call order, special characters included', async () => {
    const s = await open();
    const [parent] = await s.insertJobs([newJob()], T0);
    // More jobs than a group commit, without keys or ordering: PostgreSQL takes these by COPY, whose text
    // format escapes backslashes, tabs and line breaks.
    const odd = 'tab\there, line\nbreak, cr\rreturn, back\\slash \\N \\. "quoted" é ✓ 🚀';
    const jobs = Array.from({ length: 250 }, (_, i) =>
      newJob({
        queue: i % 5 === 0 ? `q\t${i % 2}\\\n` : 'default',
        payload: { i, odd, nested: { list: [odd, null, i / 3], empty: '' } },
        priority: i % 7,
        runAt: i % 3 === 0 ? T0 + 60_000 : T0 - i,
        maxAttempts: 1 + (i % 4),
        keyTtlMs: 1000 + i,
        parentId: i % 10 === 0 ? parent.job.id : null,
        traceContext: i % 4 === 0 ? JSON.stringify({ traceparent: `00-${odd}-${i}` }) : undefined,
      }),
    );
    const inserted = await s.insertJobs(jobs, T0);
    expect(inserted).toHaveLength(250);
    const ids = inserted.map((r) => Number(r.job.id));
    expect(new Set(ids).size).toBe(250);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    for (const [i, r] of inserted.entries()) {
      expect(r.inserted).toBe(true);
      expect(r.job.state).toBe(i % 3 === 0 ? 'scheduled' : 'available');
      expect(await s.getJob(r.job.id)).toEqual(r.job);
      expect(r.job).toMatchObject({ queue: jobs[i].queue, payload: jobs[i].payload, priority: jobs[i].priority, runAt: jobs[i].runAt, parentId: jobs[i].parentId, createdAt: T0 });
    }
    expect(await s.countJobs({})).toBe(251);
  });

  it('a bulk insert that fails stores none of its jobs', async () => {
    const s = await open();
    const jobs = Array.from({ length: 200 }, (_, i) => newJob({ payload: { i } }));
    // A priority that is not a number (enqueue validates it; the store refuses it too), and with it the whole statement.
    jobs[150] = newJob({ priority: Number.NaN });
    await expect(s.insertJobs(jobs, T0)).rejects.toThrow();
    expect(await s.countJobs({})).toBe(0);
    // The store is still usable afterwards (a connection cut short by a failed COPY is not reused).
    const again = await s.insertJobs(jobs.slice(0, 150), T0);
    expect(again).toHaveLength(150);
    expect(await s.countJobs({})).toBe(150);
  });

  it('wakes listeners when a bulk insert adds work', async () => {
    const s = await open();
    const heard: string[] = [];
    const stop = await s.onWake((q) => heard.push(q));
    try {
      await s.insertJobs(Array.from({ length: 150 }, () => newJob({ queue: 'bulk', runAt: Date.now() })), Date.now());
      await waitFor(() => heard.includes('bulk'), 5000, 10);
    } finally {
      await stop();
    }
  });

  it('wakes listeners when work arrives', async () => {
    const s = await open();
    const heard: string[] = [];
    const stop = await s.onWake((q) => heard.push(q));
    // Queue names that look like PostgreSQL's hand-off messages ('#{...}', '@<id> <worker>') are still queues.
    const queues = ['mail', '#urgent', '#{"w":1}', '@night'];
    try {
      for (const queue of queues) await s.insertJobs([newJob({ queue, runAt: Date.now() })], Date.now());
      await waitFor(() => queues.every((q) => heard.includes(q)), 5000, 10);
    } finally {
      await stop();
    }
  });
});
