/**
 * The workflow store, checked unchanged against every store: a run keeps the
 * version it started with, a completed history position is never overwritten,
 * signals are delivered once and in order, and sleeping workflows are woken by
 * a signal or a finished child, including one that came while they were still running.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/job.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import type { StepRecord } from '../../src/store/workflows.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';
import { jobFactory, T0 } from '../helpers/new-job.ts';

const newJob = jobFactory('wf');

function step(seq: number, over: Partial<StepRecord> = {}): StepRecord {
  return {
    seq,
    name: `s${seq}`,
    kind: 'step',
    status: 'running',
    result: null,
    error: null,
    attempts: 1,
    wakeAt: null,
    startedAt: T0,
    finishedAt: null,
    compensation: 'none',
    compensationAttempts: 0,
    compensationError: null,
    ...over,
  };
}

describe.each(storeKinds)('workflow store conformance: %s', (kind) => {
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
  const claim = (s: Store, now = T0, types = ['wf']) => s.claimJobs({ workerId: 'w1', queues: ['default'], types, limit: 10, leaseMs: 1000, now });
  const snooze = (s: Store, j: { id: string; leaseToken: number }, runAt: number, now: number) =>
    s.snoozeJob({ id: j.id, token: j.leaseToken, runAt, reason: 'wait', now });

  it('a run keeps the version and state it started with', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    const first = await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 1, state: 'Pending', now: T0 });
    const again = await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 2, state: 'Other', now: T0 + 5 });
    expect(first).toMatchObject({ version: 1, status: 'running', state: 'Pending', waiting: null });
    expect(again).toEqual(first);
    await s.workflows.updateRun(job.id, { state: 'Charged', waiting: 'timer' }, T0 + 10);
    expect(await s.workflows.getRun(job.id)).toMatchObject({ version: 1, state: 'Charged', waiting: 'timer', updatedAt: T0 + 10 });
    expect(await s.workflows.getRun('424242')).toBeNull();
  });

  it('saves history positions in order and never overwrites a completed one', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    await s.workflows.saveStep(job.id, step(2));
    await s.workflows.saveStep(job.id, step(1, { status: 'completed', result: { a: 1 }, finishedAt: T0 + 1 }));
    const late = await s.workflows.saveStep(job.id, step(1, { status: 'completed', result: { a: 2 }, attempts: 2 }));
    expect(late).toMatchObject({ status: 'completed', result: { a: 1 }, attempts: 1 });
    // Compensation progress may still be written on a completed position.
    await s.workflows.saveStep(job.id, { ...late, compensation: 'done', compensationAttempts: 1 });
    const steps = await s.workflows.listSteps(job.id);
    expect(steps.map((x) => [x.seq, x.status, x.compensation])).toEqual([
      [1, 'completed', 'done'],
      [2, 'running', 'none'],
    ]);
    expect(steps[0].result).toEqual({ a: 1 });
  });

  it('delivers signals once, oldest first, and gives a position back the signal it already took', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 1, state: null, now: T0 });
    await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: { n: 1 }, now: T0 });
    await s.workflows.sendSignal({ jobId: job.id, name: 'other', payload: null, now: T0 });
    await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: { n: 2 }, now: T0 + 1 });
    expect((await s.workflows.takeSignal({ jobId: job.id, name: 'go', seq: 3, now: T0 }))?.payload).toEqual({ n: 1 });
    expect((await s.workflows.takeSignal({ jobId: job.id, name: 'go', seq: 3, now: T0 }))?.payload).toEqual({ n: 1 });
    expect((await s.workflows.takeSignal({ jobId: job.id, name: 'go', seq: 5, now: T0 }))?.payload).toEqual({ n: 2 });
    expect(await s.workflows.takeSignal({ jobId: job.id, name: 'go', seq: 7, now: T0 })).toBeNull();
    expect((await s.workflows.listSignals(job.id)).map((x) => [x.name, x.consumedBy])).toEqual([
      ['go', 3],
      ['other', null],
      ['go', 5],
    ]);
  });

  it('two executors of one run waiting at the same position take the same one signal', async () => {
    const s = await open();
    const other = await openStore(url);
    const [{ job }] = await s.insertJobs([newJob()], T0);
    await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: { n: 1 }, now: T0 });
    await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: { n: 2 }, now: T0 });
    const taken = await Promise.all([s, other, s, other].map((st) => st.workflows.takeSignal({ jobId: job.id, name: 'go', seq: 4, now: T0 })));
    await other.close();
    expect(new Set(taken.map((t) => t?.id)).size).toBe(1);
    expect((await s.workflows.listSignals(job.id)).filter((x) => x.consumedBy != null)).toHaveLength(1);
  });

  it('a signal wakes a workflow sleeping for it, and only that one', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 1, state: null, now: T0 });
    const [c] = await claim(s);
    await s.workflows.updateRun(job.id, { waiting: 'signal:go' }, T0);
    await snooze(s, c, T0 + 3_600_000, T0);
    expect((await s.workflows.sendSignal({ jobId: job.id, name: 'other', payload: null, now: T0 + 5 })).woke).toBe(false);
    expect((await s.getJob(job.id))?.state).toBe('scheduled');
    expect((await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: null, now: T0 + 5 })).woke).toBe(true);
    expect(await s.getJob(job.id)).toMatchObject({ state: 'available', runAt: T0 + 5 });
  });

  it('a signal that arrives while the workflow is still running wakes it as soon as it goes to sleep', async () => {
    const s = await open();
    const [{ job }] = await s.insertJobs([newJob()], T0);
    await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 1, state: null, now: T0 });
    const [c] = await claim(s);
    await s.workflows.updateRun(job.id, { waiting: 'signal:go' }, T0);
    expect((await s.workflows.sendSignal({ jobId: job.id, name: 'go', payload: null, now: T0 + 1 })).woke).toBe(false);
    await snooze(s, c, T0 + 3_600_000, T0 + 2);
    expect((await s.getJob(job.id))?.state).toBe('available');
    expect((await claim(s, T0 + 3)).map((j) => j.id)).toEqual([job.id]);
  });

  it('a signal sent at the moment its workflow goes to sleep, from another connection, still wakes it', async () => {
    const s = await open();
    const other = await openStore(url);
    const n = 40;
    const jobs = (await s.insertJobs(Array.from({ length: n }, () => newJob()), T0)).map((r) => r.job);
    for (const job of jobs) await s.workflows.startRun({ jobId: job.id, type: 'wf', version: 1, state: null, now: T0 });
    const claimed = await s.claimJobs({ workerId: 'w1', queues: ['default'], types: ['wf'], limit: n, leaseMs: 60_000, now: T0 });
    for (const job of jobs) await s.workflows.updateRun(job.id, { waiting: 'signal:go' }, T0);
    // Each workflow goes to sleep on one connection while its signal arrives on another, all at once.
    await Promise.all(
      claimed.flatMap((c) => [snooze(s, c, T0 + 3_600_000, T0 + 1), other.workflows.sendSignal({ jobId: c.id, name: 'go', payload: null, now: T0 + 1 })]),
    );
    await other.close();
    const states = await Promise.all(jobs.map(async (j) => (await s.getJob(j.id))?.state));
    expect(states.filter((st) => st !== 'available')).toEqual([]);
  });

  it('a finished child wakes its parent sleeping in join, also when it finished while the parent was running', async () => {
    const s = await open();
    const [{ job: parent }] = await s.insertJobs([newJob()], T0);
    await s.workflows.startRun({ jobId: parent.id, type: 'wf', version: 1, state: null, now: T0 });
    const [a, b] = (await s.insertJobs([newJob({ type: 'kid', parentId: parent.id }), newJob({ type: 'kid', parentId: parent.id })], T0)).map((r) => r.job);
    const [p] = await claim(s);
    await s.workflows.updateRun(parent.id, { waiting: 'children' }, T0);
    const kids = await claim(s, T0, ['kid']);
    expect(kids).toHaveLength(2);
    await snooze(s, p, T0 + 3_600_000, T0 + 1);
    expect((await s.getJob(parent.id))?.state).toBe('scheduled');
    await s.completeJobs([{ id: a.id, token: kids.find((k) => k.id === a.id)!.leaseToken, result: 1 }], T0 + 2);
    expect(await s.getJob(parent.id)).toMatchObject({ state: 'available', runAt: T0 + 2 });

    // The parent runs again; the second child finishes before the parent goes back to sleep.
    const [p2] = await claim(s, T0 + 3);
    await s.failJob({ id: b.id, token: kids.find((k) => k.id === b.id)!.leaseToken, now: T0 + 4, outcome: { kind: 'dead', reason: 'permanent', error: { kind: 'permanent', name: 'E', message: 'x', fingerprint: 'f' } } });
    expect((await s.getJob(parent.id))?.state).toBe('running');
    await snooze(s, p2, T0 + 3_600_000, T0 + 5);
    expect((await s.getJob(parent.id))?.state).toBe('available');

    // A parent that does not wait for children is left alone.
    await s.workflows.updateRun(parent.id, { waiting: null }, T0 + 6);
    const [p3] = await claim(s, T0 + 6);
    const [{ job: c }] = await s.insertJobs([newJob({ type: 'kid', parentId: parent.id })], T0 + 6);
    await snooze(s, p3, T0 + 3_600_000, T0 + 7);
    const [kid] = await claim(s, T0 + 8, ['kid']);
    await s.completeJobs([{ id: c.id, token: kid.leaseToken, result: 1 }], T0 + 9);
    expect((await s.getJob(parent.id))?.state).toBe('scheduled');
  });

  it('a child that finishes at the moment its parent goes to sleep, on another connection, still wakes the parent', async () => {
    const s = await open();
    const other = await openStore(url);
    const n = 40;
    const parents = (await s.insertJobs(Array.from({ length: n }, () => newJob()), T0)).map((r) => r.job);
    for (const p of parents) await s.workflows.startRun({ jobId: p.id, type: 'wf', version: 1, state: null, now: T0 });
    await s.insertJobs(parents.map((p) => newJob({ type: 'kid', parentId: p.id })), T0);
    const running = await s.claimJobs({ workerId: 'w1', queues: ['default'], types: ['wf'], limit: n, leaseMs: 60_000, now: T0 });
    const kids = await s.claimJobs({ workerId: 'w2', queues: ['default'], types: ['kid'], limit: n, leaseMs: 60_000, now: T0 });
    expect([running.length, kids.length]).toEqual([n, n]);
    for (const p of parents) await s.workflows.updateRun(p.id, { waiting: 'children' }, T0);
    // Each parent goes to sleep on one connection while its only child finishes on another, all at once.
    await Promise.all([
      ...running.map((p) => snooze(s, p, T0 + 3_600_000, T0 + 1)),
      ...kids.map((k) => other.completeJobs([{ id: k.id, token: k.leaseToken, result: 1 }], T0 + 2)),
    ]);
    await other.close();
    // A parent that neither side woke was noted; the workers' periodic pass wakes it.
    await s.workflows.wakeMissed(T0 + 3);
    const states = await Promise.all(parents.map(async (p) => (await s.getJob(p.id))?.state));
    expect(states.filter((st) => st !== 'available')).toEqual([]);
  });

  it('a purged job takes its run, history and signals with it', async () => {
    const s = await open();
    const [{ job: gone }, { job: kept }] = await s.insertJobs([newJob(), newJob()], T0);
    for (const j of [gone, kept]) {
      await s.workflows.startRun({ jobId: j.id, type: 'wf', version: 1, state: null, now: T0 });
      await s.workflows.saveStep(j.id, step(1));
      await s.workflows.sendSignal({ jobId: j.id, name: 'go', payload: null, now: T0 });
    }
    const claimed = await claim(s);
    const c = claimed.find((j) => j.id === gone.id)!;
    await s.failJob({ id: c.id, token: c.leaseToken, now: T0, outcome: { kind: 'dead', reason: 'permanent', error: { kind: 'permanent', name: 'E', message: 'x', fingerprint: 'f' } } });
    expect(await s.purgeDead({ ids: [gone.id] })).toBe(1);
    expect(await s.workflows.getRun(gone.id)).toBeNull();
    expect(await s.workflows.listSteps(gone.id)).toEqual([]);
    expect(await s.workflows.listSignals(gone.id)).toEqual([]);
    expect(await s.workflows.getRun(kept.id)).not.toBeNull();
    expect(await s.workflows.listSteps(kept.id)).toHaveLength(1);
    expect(await s.workflows.listSignals(kept.id)).toHaveLength(1);
  });
  it('writes fenced with a lease token are made only while the job runs under that token', async () => {
    const s = await open();
    await s.insertJobs([newJob()], T0);
    const [first] = await claim(s);
    const lease = first.leaseToken;
    const run = await s.workflows.startRun({ jobId: first.id, type: 'wf', version: 1, state: null, now: T0, token: lease });
    expect(run.status).toBe('running');
    await s.workflows.saveStep(first.id, step(1), lease);
    await s.workflows.updateRun(first.id, { waiting: 'timer' }, T0, lease);
    // The lease lapses and another worker claims the job: the first executor's writes are refused and change nothing.
    expect(await s.releaseJobs([{ id: first.id, token: lease }], T0 + 1)).toBeDefined();
    const [second] = await claim(s, T0 + 2);
    expect(second.leaseToken).toBeGreaterThan(lease);
    await expect(s.workflows.saveStep(first.id, step(1, { status: 'completed', result: { stale: true } }), lease)).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(s.workflows.saveStep(first.id, step(2), lease)).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(s.workflows.updateRun(first.id, { status: 'completed' }, T0 + 3, lease)).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(s.workflows.startRun({ jobId: first.id, type: 'wf', version: 1, state: null, now: T0, token: lease })).rejects.toMatchObject({ code: 'lease_lost' });
    expect((await s.workflows.listSteps(first.id)).map((r) => [r.seq, r.status])).toEqual([[1, 'running']]);
    expect(await s.workflows.getRun(first.id)).toMatchObject({ status: 'running', waiting: 'timer' });
    // The current executor writes; once its job is no longer running (here: failed for good), it cannot either.
    await s.workflows.saveStep(first.id, step(1, { status: 'completed', result: { ok: 1 } }), second.leaseToken);
    const error = { kind: 'permanent' as const, name: 'E', message: 'x', fingerprint: 'f' };
    await s.failJob({ id: second.id, token: second.leaseToken, now: T0 + 4, outcome: { kind: 'dead', reason: 'permanent', error } });
    await expect(s.workflows.updateRun(first.id, { status: 'completed' }, T0 + 5, second.leaseToken)).rejects.toMatchObject({ code: 'lease_lost' });
    expect(await s.workflows.listSteps(first.id)).toMatchObject([{ seq: 1, status: 'completed', result: { ok: 1 } }]);
    expect((await s.workflows.getRun(first.id))?.status).toBe('running');
  });
});
