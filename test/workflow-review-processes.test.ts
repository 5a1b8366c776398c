/**
 * A workflow's worker process killed with SIGKILL in the middle of a compensation: another worker resumes
 * undoing at the compensation that was under way (the one window where an effect may repeat, with the same
 * idempotency key), and no compensation already done, and no finished step, runs again.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Rebound } from '../src/index.ts';
import { exited, startCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const JOBS = fileURLToPath(new URL('./fixtures/workflow-review-jobs.ts', import.meta.url));

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-wf-review-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

describe.each(storeKinds)('workflow compensation across a killed worker on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const children: ReturnType<typeof startCli>[] = [];
  const worker = (ledger: string, extra: string[] = []) => {
    const child = startCli(['worker', '--jobs', JOBS, '--store', url, ...extra], { LEDGER: ledger });
    children.push(child);
    return child;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await dropStore(url);
  });

  it('kill -9 during a compensation: the next worker finishes undoing in reverse order, each step and done compensation once', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const { id } = await rebound.enqueue('undo-slowly', { ms: 1500 });
    const victim = worker(ledger, ['--concurrency', '1']);
    await waitFor(() => lines(ledger).some((l) => l[0] === 'release-start'));
    victim.kill('SIGKILL');
    await exited(victim);
    expect((await rebound.workflow(id))?.status).toBe('compensating');

    const rescuer = worker(ledger, ['--concurrency', '1', '--drain']);
    expect(await exited(rescuer)).toBe(0);
    const job = await rebound.getJob(id);
    expect(job).toMatchObject({ state: 'compensated', result: { compensated: ['reserve', 'charge'] } });
    const who = (pid: string) => (pid === String(victim.pid) ? 'victim' : 'rescuer');
    const effects = lines(ledger).map((l) => `${l[0]} ${who(l[2])}${l[3] ? ` ${l[3]}` : ''}`);
    expect(effects).toEqual([
      'charge victim',
      'reserve victim',
      'ship victim',
      'release-start victim 1',
      'release-start rescuer 2',
      'release-end rescuer 2',
      'refund rescuer',
    ]);
    const wf = await rebound.workflow(id);
    expect(wf.steps.map((s) => [s.name, s.status, s.compensation])).toEqual([
      ['charge', 'completed', 'done'],
      ['reserve', 'completed', 'done'],
      ['ship', 'failed', 'none'],
    ]);
    expect(wf.status).toBe('compensated');
  });
});
