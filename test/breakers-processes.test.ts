/**
 * Two real worker processes share one breaker through the store: one trips
 * it, the other stops running that type; `rebound breaker close` lets it run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Rebound } from '../src/index.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

const JOBS = fileURLToPath(new URL('./fixtures/self-healing-jobs.ts', import.meta.url));
const FREEZE_IN_LOCK = fileURLToPath(new URL('./fixtures/freeze-in-lock.ts', import.meta.url));

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

describe.each(storeKinds)('a breaker shared by two processes on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const children: ReturnType<typeof startCli>[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await dropStore(url);
  });

  it('one process trips it, the other stops running that type until an operator closes it', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const env = { LEDGER: ledger };
    children.push(startCli(['worker', '--jobs', JOBS, '--store', url, '--queues', 'qa'], env));
    children.push(startCli(['worker', '--jobs', JOBS, '--store', url, '--queues', 'qb'], env));
    await rebound.enqueueMany([0, 1].map(() => ({ type: 'flaky', payload: {}, opts: { queue: 'qa' } })));
    await waitFor(async () => (await rebound.breakers.get('shared')).state === 'open', 30_000);

    const guarded = await rebound.enqueueMany([0, 1, 2].map(() => ({ type: 'guarded', payload: {}, opts: { queue: 'qb' } })));
    await sleep(1500);
    expect(lines(ledger).filter((l) => l[0] === 'guarded')).toEqual([]);
    // Waiting, not run, no attempt used (one claimed in the instant before the gate saw the trip is put back to sleep).
    for (const g of guarded) {
      const job = await rebound.getJob(g.id);
      expect(['available', 'scheduled']).toContain(job?.state);
      expect(job?.attempt).toBe(0);
    }

    const list = await runCli(['--json', '--store', url, 'breaker', 'list']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'shared', state: 'open', blocking: true })]);

    const closed = await runCli(['--store', url, 'breaker', 'close', 'shared']);
    expect(closed).toMatchObject({ code: 0, stdout: 'breaker shared: closed (forced closed)\nthe dead jobs of its outage will be redriven by a worker running its job types\n' });
    await waitFor(async () => (await rebound.countJobs({ type: 'guarded', state: 'completed' })) === 3, 30_000);
    const runs = lines(ledger).filter((l) => l[0] === 'guarded');
    expect(runs).toHaveLength(3);
    // The qb process ran them, not the one that tripped the breaker.
    expect(new Set(runs.map((l) => l[2]))).toEqual(new Set([String(children[1].pid)]));

    const events = await runCli(['--json', '--store', url, 'breaker', 'events', 'shared']);
    expect(JSON.parse(events.stdout).map((e: { to: string; actor: string }) => `${e.to}:${e.actor}`)).toEqual(['closed:cli', 'open:breaker']);
    const bad = await runCli(['--store', url, 'breaker', 'open', 'no spaces allowed']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: validation: breaker: /);
  });
});

describe('a process frozen inside a breaker write on postgres', () => {
  let url: string;
  let child: ReturnType<typeof spawn> | undefined;
  afterEach(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await dropStore(url);
  });

  it('holds the breaker for at most the idle timeout: the server ends its transaction and the others go on', async () => {
    url = freshStoreUrl('postgres');
    const rebound = await createRebound({ store: url });
    try {
      const frozen = spawn(process.execPath, ['--import', 'tsx', FREEZE_IN_LOCK], { env: { ...process.env, STORE: url } });
      child = frozen;
      let out = '';
      frozen.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => out.includes('locked'));
      expect(frozen.exitCode).toBeNull();
      // Still frozen: without the server's idle timeout this call's outcome would wait for the row lock until
      // the process is thawed. 20 s is ten times the timeout, only to turn a hang into a clear failure.
      expect(await rebound.breakers.guard('frozen').run(async () => 'ok')).toBe('ok');
      const written = rebound.breakers.flush().then(() => 'written');
      const hung = sleep(20_000).then(() => 'still waiting for the frozen process');
      expect(await Promise.race([written, hung])).toBe('written');
      expect(frozen.exitCode).toBeNull();
      expect((await rebound.breakers.get('frozen')).window.calls).toBe(1);
      // Thawed, the frozen process finds its transaction gone: its write was not applied.
      frozen.kill('SIGCONT');
      await waitFor(() => out.includes('refused') || out.includes('committed'));
      expect(out).toContain('refused');
      expect((await rebound.breakers.get('frozen')).lastError).toBeNull();
    } finally {
      await rebound.close();
    }
  });
});
