/**
 * A workflow's worker process killed with SIGKILL in the middle of a step:
 * another worker resumes the run at the unfinished step, and no finished step
 * runs twice (the steps' side effects are counted in a ledger file).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Rebound } from '../src/index.ts';
import { exited, runCli, startCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const WORKFLOW_JOBS = fileURLToPath(new URL('./fixtures/workflow-jobs.ts', import.meta.url));

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-wf-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));

describe.each(storeKinds)('workflow worker processes on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const children: ReturnType<typeof startCli>[] = [];
  const worker = (ledger: string, extra: string[] = []) => {
    const child = startCli(['worker', '--jobs', WORKFLOW_JOBS, '--store', url, ...extra], { LEDGER: ledger });
    children.push(child);
    return child;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await rebound?.close();
    await dropStore(url);
  });

  it('kill -9 mid-workflow: the run resumes at the unfinished step and no finished step runs twice', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const { id } = await rebound.enqueue('fulfil', { ms: 1500 }, { idempotencyKey: 'order-1' });
    const victim = worker(ledger, ['--concurrency', '1']);
    await waitFor(() => lines(ledger).some((l) => l[0] === 'ship-start'));
    victim.kill('SIGKILL');
    await exited(victim);
    expect((await rebound.getJob(id))?.state).toBe('running');

    const rescuer = worker(ledger, ['--concurrency', '1', '--drain']);
    expect(await exited(rescuer)).toBe(0);
    const job = await rebound.getJob(id);
    expect(job).toMatchObject({ state: 'completed', crashCount: 1, result: { chargeId: `ch-${id}`, pid: rescuer.pid } });
    const effects = lines(ledger).map((l) => `${l[0]} ${l[2] === String(victim.pid) ? 'victim' : 'rescuer'}`);
    expect(effects).toEqual(['charge victim', 'reserve victim', 'ship-start victim', 'ship-start rescuer', 'ship-end rescuer', 'notify rescuer']);
    const wf = await rebound.workflow(id);
    expect(wf.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['charge', 'completed', 1],
      ['reserve', 'completed', 1],
      ['ship', 'completed', 2],
      ['notify', 'completed', 1],
    ]);
    // Enqueueing the run again with its key returns the same run: the key names the whole workflow.
    expect(await rebound.enqueue('fulfil', { ms: 1500 }, { idempotencyKey: 'order-1' })).toMatchObject({ id, deduplicated: true });
  });

  it('`rebound signal ID NAME JSON` resumes a waiting workflow; `rebound workflow ID` shows its history', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const ledger = ledgerFile();
    const { id } = await rebound.enqueue('approval', {});
    const w = worker(ledger, ['--concurrency', '1']);
    await waitFor(async () => (await rebound.workflow(id).catch(() => null))?.waiting === 'signal:approve', 30_000);

    expect((await runCli(['signal', id, 'approve', '{bad', '--store', url])).code).toBe(2);
    const missing = await runCli(['signal', '999999', 'approve', '{}', '--store', url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not_found');

    const sent = await runCli(['signal', id, 'approve', '{"approved":true}', '--store', url, '--json']);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ signalId: expect.any(String) });
    await waitFor(async () => (await rebound.getJob(id))?.state === 'completed', 30_000);
    expect(lines(ledger)).toEqual([['approved', id, 'true']]);

    const shown = await runCli(['workflow', id, '--store', url, '--json']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'completed', steps: [{ kind: 'signal', name: 'approve' }, { name: 'record' }] });
    const job = await runCli(['job', id, '--store', url]);
    expect(job.stdout).toContain('workflow: v1 completed, state -, waiting -');
    w.kill('SIGTERM');
    await exited(w);
  });
});
