/**
 * Workers under the supervisor (`rebound worker --processes N`): worker
 * processes killed, one frozen past the supervisor's liveness limit, and the
 * supervisor itself killed and started again. Its orphaned workers drain and
 * exit; no job is lost and no payment is made twice.
 */
import { fork } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { runExperiment } from '../../chaos/harness.ts';
import { BIN, CHAOS_JOBS } from '../../chaos/workers.ts';
import { dropStore, freshStoreUrl } from '../helpers/stores.ts';
import { toMarkdown } from '../../chaos/report.ts';
import { scenario } from './scenario.ts';

describe('chaos under the supervisor', () => {
  it('killing workers and the supervisor loses no job and applies no payment twice', async () => {
    const verdict = await runExperiment(
      scenario('sqlite', {
        supervised: true,
        mix: { jobs: 300, slow: 4, flaky: 6, permanent: 2 },
        faults: { killWorker: 2, killSupervisor: 1, stopWorker: 1 },
        windowMs: 10_000,
      }),
    );
    const report = toMarkdown(verdict);
    expect(verdict.lost, report).toBe(0);
    expect(verdict.appliedTwice, report).toBe(0);
    expect(verdict.effectsMissing, report).toBe(0);
    expect(verdict.unexpectedDead, report).toBe(0);
    expect(verdict.unexpectedExits, report).toEqual([]);
    expect(verdict.faults.filter((f) => f.kind === 'kill-supervisor'), report).toHaveLength(1);
    expect(verdict.faults.filter((f) => f.kind === 'kill-worker'), report).toHaveLength(2);
    // (Whether a kill lands on a worker with jobs in flight, so that leases expire, is up to the timing.)
    // The harness started the supervisor again after the kill.
    expect(verdict.workerStarts, report).toBe(2);
    // The killed supervisor's workers did not linger past the run.
    expect(verdict.lingered, report).toBe(0);
  });

  let url: string;
  afterEach(async () => url && dropStore(url));

  // Found by the chaos run: a supervisor killed while its new worker was still loading left that worker
  // running for ever, unsupervised, because the channel closed before the worker listened for it.
  it('a worker whose supervisor died while the worker was still starting exits by itself', async () => {
    url = freshStoreUrl('sqlite');
    const child = fork(BIN, ['worker', '--jobs', CHAOS_JOBS, '--store', url], {
      env: { ...process.env, REBOUND_SUPERVISED: '1' },
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // The supervisor is gone before the worker has even loaded its modules.
    child.disconnect();
    const exited = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 40_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!exited) child.kill('SIGKILL');
    expect(exited).toBe(true);
  }, 60_000);
});
