/**
 * Real worker processes on both stores: they share work without running a job
 * twice at once, and a worker killed with SIGKILL loses nothing and repeats no effect.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Rebound } from '../src/index.ts';
import { exited, FIXTURE_JOBS, startCli } from './helpers/cli.ts';
import { freezeOutsideWrite } from './helpers/freeze.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

describe.each(storeKinds)('worker processes on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const children: ReturnType<typeof startCli>[] = [];
  /**
   * A worker process. `steady` gives its jobs leases of a minute (FIXTURE_LEASE_MS) instead of the fixtures'
   * half second: for a worker that must not have its own jobs rescued and run again because a loaded machine
   * stalled it that long (a stall mid-job runs the job twice by design; the frozen worker below is the test of it).
   */
  const worker = (ledger: string, extra: string[] = [], steady = false) => {
    const child = startCli(['worker', '--jobs', FIXTURE_JOBS, '--store', url, ...extra], {
      LEDGER: ledger,
      REBOUND_LOG_LEVEL: 'info',
      REBOUND_LOG_FORMAT: 'json',
      ...(steady ? { FIXTURE_LEASE_MS: '60000' } : {}),
    });
    children.push(child);
    return child;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await dropStore(url);
  });

  it('two worker processes never run one job at the same time, and every job runs once', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const a = worker(ledger, ['--concurrency', '4'], true);
    const b = worker(ledger, ['--concurrency', '4'], true);
    await waitFor(() => a.output().includes('worker started') && b.output().includes('worker started'));
    await rebound.enqueueMany(Array.from({ length: 80 }, () => ({ type: 'record', payload: { ms: 15 } })));
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 80);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect(await exited(a)).toBe(0);
    expect(await exited(b)).toBe(0);
    const starts = lines(ledger).filter((l) => l[0] === 'start');
    expect(starts).toHaveLength(80);
    expect(new Set(starts.map((l) => l[1])).size).toBe(80);
    // Both processes took part.
    expect(new Set(starts.map((l) => l[2])).size).toBe(2);
  });

  it('a worker killed with SIGKILL mid-job has its job finished by another worker, once, with no repeated effect', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const { id } = await rebound.enqueue('pay', { ms: 1500 });
    const victim = worker(ledger, ['--concurrency', '1']);
    await waitFor(() => lines(ledger).some((l) => l[0] === 'working'));
    victim.kill('SIGKILL');
    await exited(victim);
    const victimPid = String(victim.pid);
    expect((await rebound.getJob(id))?.state).toBe('running');

    const rescuer = worker(ledger, ['--concurrency', '1', '--drain'], true);
    expect(await exited(rescuer)).toBe(0);
    const job = await rebound.getJob(id);
    expect(job).toMatchObject({ state: 'completed', attempt: 2, crashCount: 1, result: { pid: rescuer.pid } });
    const charges = lines(ledger).filter((l) => l[0] === 'charge');
    expect(charges).toEqual([['charge', id, victimPid]]);
    const working = lines(ledger).filter((l) => l[0] === 'working').map((l) => l[2]);
    expect(working).toEqual([victimPid, String(rescuer.pid)]);
    const { history } = await rebound.inspect(id);
    expect(history.map((h) => h.kind)).toEqual(['enqueued', 'claimed', 'lease_expired', 'claimed', 'completed']);
  });

  it('a worker frozen (SIGSTOP) past its leases starts none of its waiting jobs once thawed: they ran once, elsewhere', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    // Ten run at once on the first worker; its claim brings the other four into its local queue.
    const jobs = await rebound.enqueueMany(Array.from({ length: 14 }, () => ({ type: 'record', payload: { ms: 1500 } })));
    const stalled = worker(ledger, ['--concurrency', '10']);
    const startLines = () => lines(ledger).filter((l) => l[0] === 'start');
    await waitFor(async () => (await rebound.countJobs({ state: 'running' })) === 14 && startLines().length === 10);
    const startedBefore = new Set(startLines().map((l) => l[1]));
    const waiting = jobs.map((j) => j.id).filter((id) => !startedBefore.has(id));
    expect(waiting).toHaveLength(4);
    const stalledId = (await rebound.getJob(waiting[0]))!.leaseOwner;
    await freezeOutsideWrite(stalled, url);
    // Its leases lapse; other workers rescue every job and run it (alone: each is a suspect of the stall, so the
    // 14 jobs of 1.5 s run about one per heir at a time: about 10 s alone, and over 30 s once beside a loaded full run).
    const heirs = [1, 2, 3].map(() => worker(ledger, ['--concurrency', '10'], true));
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 14, 90_000);
    stalled.kill('SIGCONT');
    const startsOf = (id: string) => startLines().filter((l) => l[1] === id).map((l) => l[2]);
    const lostByStalled = async (id: string) =>
      (await rebound.inspect(id)).history.some((h) => h.kind === 'lease_lost' && h.worker === stalledId);
    // Thawed, it finds the leases of its waiting jobs gone (a heartbeat, or the renewal before a start) and leaves them.
    for (const id of waiting) await waitFor(async () => startsOf(id).length > 1 || (await lostByStalled(id)), 30_000);
    for (const id of waiting) {
      expect(startsOf(id)).toHaveLength(1);
      expect(heirs.map((h) => String(h.pid))).toContain(startsOf(id)[0]);
    }
  }, 180_000);

  it('a job that kills its worker every time ends in the dead letter queue as poison; other jobs complete', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const poison = await rebound.enqueue('crash', {}, { maxAttempts: 10 });
    await rebound.enqueueMany(Array.from({ length: 5 }, () => ({ type: 'record', payload: {} })));
    // Restart the worker whenever the poison message kills it, like a supervisor would.
    const deadline = Date.now() + 40_000;
    while ((await rebound.getJob(poison.id))?.state !== 'dead') {
      if (Date.now() > deadline) throw new Error('poison job never reached the dead letter queue');
      const w = worker(ledger, ['--concurrency', '1', '--drain']);
      await exited(w);
    }
    const dead = await rebound.getJob(poison.id);
    expect(dead).toMatchObject({ deadReason: 'poison', crashCount: 3 });
    // Three crashes blamed on it (alone on its worker); a crash shared with another job's lease is not blamed.
    expect(lines(ledger).filter((l) => l[0] === 'crash').length).toBeGreaterThanOrEqual(3);
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 5, 30_000);
  });

  it('jobs that shared a worker with a poison message are not condemned with it: suspects run alone', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const innocents = await rebound.enqueueMany(Array.from({ length: 8 }, () => ({ type: 'record', payload: { ms: 400 } })));
    const poison = await rebound.enqueue('crash', {}, { maxAttempts: 20 });
    const deadline = Date.now() + 50_000;
    while ((await rebound.getJob(poison.id))?.state !== 'dead') {
      if (Date.now() > deadline) throw new Error('poison job never reached the dead letter queue');
      const w = worker(ledger, ['--concurrency', '10', '--drain']);
      await exited(w);
    }
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 8, 30_000);
    expect(await rebound.getJob(poison.id)).toMatchObject({ deadReason: 'poison', crashCount: 3 });
    expect((await rebound.listDead()).map((j) => j.id)).toEqual([poison.id]);
    // The first crash took the innocents down with it: they were suspects, ran alone, and completed.
    const suspects = await Promise.all(innocents.map((j) => rebound.inspect(j.id)));
    expect(suspects.some((d) => d.history.some((h) => h.kind === 'lease_expired' && h.data?.isolated === true))).toBe(true);
    expect(suspects.every((d) => d.job.state === 'completed' && d.job.crashCount === 0)).toBe(true);
  });
});
