/**
 * Coordination across real processes, on both stores: three workers share one
 * per-second schedule (and lose their leader to SIGKILL on the way) and every
 * fire time yields exactly one job, none missing; a leader frozen with SIGSTOP
 * loses leadership, and after SIGCONT its fenced write is refused and it steps down.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, parseCron, type Rebound } from '../../src/index.ts';
import { exited, FIXTURE_JOBS, runCli, startCli } from '../helpers/cli.ts';
import { freezeOutsideWrite } from '../helpers/freeze.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from '../helpers/stores.ts';

const LEADER_FIXTURE = fileURLToPath(new URL('../fixtures/leader-process.ts', import.meta.url));
const LEASE = 'leader:maintenance';

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}

describe.each(storeKinds)('coordination across processes on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const children: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: NodeJS.Signals | null }[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await dropStore(url);
  });

  it('three workers and a per-second schedule: exactly one job per fire time, none missing, across a leader killed with SIGKILL', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const add = await runCli(['schedule', 'add', 'tick', '--cron', '* * * * * *', '--type', 'record', '--payload', '{"ms":1}', '--store', url]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const ledger = ledgerFile();
    const workers = [0, 1, 2].map(() => {
      const c = startCli(['worker', '--jobs', FIXTURE_JOBS, '--store', url, '--leader-lease-ms', '1500'], { LEDGER: ledger });
      children.push(c);
      return c;
    });
    const first = (await waitFor(() => rebound.store.coordination.getLease(LEASE), 15_000))!;
    await sleep(3000);
    // Kill whoever leads now; another worker must take over and catch up the fire times it missed.
    const leader = (await rebound.store.coordination.getLease(LEASE))!;
    const victim = workers.find((w) => leader.holder.includes(`:${w.pid}:`))!;
    expect(victim).toBeDefined();
    victim.kill('SIGKILL');
    await waitFor(async () => ((await rebound.store.coordination.getLease(LEASE))?.token ?? 0) > leader.token, 10_000);
    await sleep(2500);
    const survivors = workers.filter((w) => w !== victim);
    for (const w of survivors) w.kill('SIGTERM');
    for (const w of survivors) expect(await exited(w)).toBe(0);

    const fires = (await rebound.store.coordination.listFires('tick', 1000)).sort((a, b) => a.fireAt - b.fireAt);
    expect(fires.length).toBeGreaterThanOrEqual(6);
    // None missing: consecutive fire times are one second apart from the first to the last.
    for (let i = 1; i < fires.length; i++) expect(fires[i].fireAt - fires[i - 1].fireAt).toBe(1000);
    // Exactly one job per fire time, each keyed by its fire time.
    const jobs = await rebound.listJobs({ type: 'record', limit: 1000 });
    expect(jobs).toHaveLength(fires.length);
    expect(new Set(jobs.map((j) => j.idempotencyKey))).toEqual(new Set(fires.map((f) => `schedule:tick:${new Date(f.fireAt).toISOString()}`)));
    expect(new Set(fires.map((f) => f.jobId)).size).toBe(fires.length);
    // Fired by more than one leader, each with its own term.
    expect(new Set(fires.map((f) => f.term)).size).toBeGreaterThanOrEqual(2);
    expect(first.token).toBe(1);
    // From the first fire time after the schedule was added (before any worker was up) to the last.
    const schedule = await rebound.coordination.getSchedule('tick');
    expect(fires[0].fireAt).toBe(parseCron('* * * * * *').next(schedule.createdAt));
    expect(schedule.lastFireAt).toBe(fires.at(-1)!.fireAt);
  }, 60_000);

  it('a leader frozen with SIGSTOP past its lease loses leadership; after SIGCONT its fenced write is refused and it steps down', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    await rebound.coordination.addSchedule('tick', { cron: '* * * * * *', type: 'record', payload: { ms: 1 }, misfire: 'skip' });
    const procs = [0, 1].map(() => {
      const child = spawn(process.execPath, ['--import', 'tsx', LEADER_FIXTURE], { env: { ...process.env, STORE: url, LEDGER: ledgerFile() } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      children.push(child);
      return Object.assign(child, { output: () => out });
    });
    const lease = (await waitFor(() => rebound.store.coordination.getLease(LEASE), 15_000))!;
    const a = procs.find((p) => lease.holder.includes(`:${p.pid}:`))!;
    const b = procs.find((p) => p !== a)!;
    await waitFor(() => a.output().includes(`leader ${lease.token}`));
    await waitFor(() => b.output().includes('ready'), 15_000);

    await freezeOutsideWrite(a, url);
    const taken = (await waitFor(async () => {
      const l = await rebound.store.coordination.getLease(LEASE);
      return l && l.token > lease.token ? l : null;
    }, 10_000).catch((e) => {
      throw new Error(`${e.message}; the other process said:\n${b.output()}`);
    }))!;
    expect(taken.holder).toContain(`:${b.pid}:`);
    await waitFor(() => b.output().includes(`leader ${taken.token}`));
    const resumedAt = Date.now();
    a.kill('SIGCONT');
    a.kill('SIGUSR2'); // resume the pass the freeze interrupted, with the old fence

    await waitFor(() => a.output().includes(`write-refused ${lease.token} stale_term`), 10_000).catch((e) => {
      throw new Error(`${e.message}; the frozen leader said:\n${a.output()}`);
    });
    await waitFor(() => a.output().includes(`stepped-down ${lease.token}`), 10_000);
    expect(a.output()).not.toContain(`write-accepted ${lease.token}`);
    // The new leader keeps its term, and nothing was recorded with the old term after the freeze ended.
    expect((await rebound.store.coordination.getLease(LEASE))?.token).toBe(taken.token);
    const fires = await rebound.store.coordination.listFires('tick', 1000);
    expect(fires.filter((f) => f.term === lease.token && f.firedAt >= resumedAt)).toEqual([]);
    await waitFor(async () => (await rebound.store.coordination.listFires('tick', 1000)).some((f) => f.term === taken.token), 10_000);
  }, 60_000);
});
