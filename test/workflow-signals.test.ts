/**
 * Who receives signals: an unfinished workflow, even one not started yet. A
 * job that is not a workflow, or a finished one, is refused with a typed error
 * and nothing is stored; over HTTP that is a 409 with the error's code, on the
 * command line exit 1 with a one-line error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, InvalidStateError, JobNotFoundError, NotAWorkflowError, type Job, type Rebound } from '../src/index.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/store.ts';
import { FIXTURE_JOBS, runCli } from './helpers/cli.ts';
import { jobFactory, T0 } from './helpers/new-job.ts';
import { dropStore, freshStoreUrl, schemaClient, storeKinds, waitFor, type StoreKind } from './helpers/stores.ts';
import { startHarness, type Harness } from './server/harness.ts';

const sendEmail = defineJob('send-email', { handler: async () => 'sent' });
const approval = defineWorkflow('approval', { run: (ctx) => ctx.waitFor('decision') });

describe.each(storeKinds)('signals on %s', (kind) => {
  let url: string;
  const clients: Rebound[] = [];
  const open = async (jobs = [sendEmail, approval]) => {
    const r = await createRebound({ store: url, jobs });
    clients.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of clients.splice(0)) await r.close();
    await dropStore(url);
  });
  const finished = (r: Rebound, id: string) =>
    waitFor(async () => {
      const j = await r.getJob(id);
      return j && ['completed', 'dead', 'cancelled', 'compensated'].includes(j.state) ? j : null;
    }) as Promise<Job>;

  it('a signal to a job that is not a workflow is refused, naming its type, and is not stored', async () => {
    url = freshStoreUrl(kind);
    const r = await open();
    const waiting = await r.enqueue('send-email', {});
    const err = await r.signal(waiting.id, 'go', { now: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotAWorkflowError);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect(err).toMatchObject({ code: 'invalid_state', jobId: waiting.id, jobType: 'send-email' });
    expect((err as Error).message).toBe(
      `job ${waiting.id} (type "send-email") is not a workflow: only workflows (defineWorkflow) receive signals; the signal was not stored`,
    );
    r.work({ pollIntervalMs: 20 });
    await finished(r, waiting.id);
    await expect(r.signal(waiting.id, 'go')).rejects.toBeInstanceOf(NotAWorkflowError);
    expect(await r.store.workflows.listSignals(waiting.id)).toEqual([]);
  });

  it('a workflow takes signals before it starts, even from a client without its definition; a finished one refuses them', async () => {
    url = freshStoreUrl(kind);
    const r = await open();
    const early = await r.enqueue('approval', {});
    const bare = await open([]);
    expect(await r.signal(early.id, 'decision', 'yes')).toMatchObject({ woke: false });
    expect(await bare.signal(early.id, 'decision', 'ignored: the first one is delivered')).toMatchObject({ woke: false });
    r.work({ pollIntervalMs: 20 });
    expect(await finished(r, early.id)).toMatchObject({ state: 'completed', result: 'yes' });

    for (const client of [r, bare]) {
      const err = await client.signal(early.id, 'decision', 'late').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidStateError);
      expect(err).not.toBeInstanceOf(NotAWorkflowError);
      expect((err as Error).message).toBe(
        `job ${early.id} (type "approval") is completed: a finished job takes no signals, only an unfinished workflow does; the signal was not stored`,
      );
    }
    expect((await r.store.workflows.listSignals(early.id)).map((s) => s.payload)).toEqual(['yes', 'ignored: the first one is delivered']);
  });
});

const wfJob = jobFactory('wf');

/** A fresh store holding one claimed job of type 'wf'. */
async function storeWithRunningJob(kind: StoreKind) {
  const url = freshStoreUrl(kind);
  const store = await openStore(url);
  await store.migrate();
  await store.insertJobs([wfJob()], T0);
  const [job] = await store.claimJobs({ workerId: 'w1', queues: ['default'], types: ['wf'], limit: 1, leaseMs: 60_000, now: T0 });
  return { url, store, job };
}

describe.each(storeKinds)('a signal and its workflow finishing at once, on %s', (kind) => {
  let url: string;
  let store: Store;
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  it('the store refuses a signal to a finished job in the transaction that would store it, and stores nothing', async () => {
    const fresh = await storeWithRunningJob(kind);
    ({ url, store } = fresh);
    const job = fresh.job;
    await store.completeJobs([{ id: job.id, token: job.leaseToken, result: 'done' }], T0 + 1);
    // The client's own look at the job came before this finish: the store's insert is where the check must hold.
    const err = await store.workflows.sendSignal({ jobId: job.id, name: 'late', payload: null, now: T0 + 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect((err as Error).message).toBe(
      `job ${job.id} (type "wf") is completed: a finished job takes no signals, only an unfinished workflow does; the signal was not stored`,
    );
    await expect(store.workflows.sendSignal({ jobId: '424242', name: 'late', payload: null, now: T0 + 2 })).rejects.toBeInstanceOf(JobNotFoundError);
    expect(await store.workflows.listSignals(job.id)).toEqual([]);
    expect(await store.workflows.listSignals('424242')).toEqual([]);
  });
});

describe('a signal and its workflow finishing at once, on postgres under READ COMMITTED', () => {
  let url: string;
  let store: Store;
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  it('a signal sent while an uncommitted finish holds the job waits for it, then is refused', async () => {
    const fresh = await storeWithRunningJob('postgres');
    ({ url, store } = fresh);
    const job = fresh.job;
    const { client, schema } = await schemaClient(url);
    const watcher = await schemaClient(url);
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE "${schema}".jobs SET state = 'completed', finished_at = $2 WHERE id = $1`, [Number(job.id), T0 + 1]);
      const sent = store.workflows.sendSignal({ jobId: job.id, name: 'late', payload: null, now: T0 + 1 }).catch((e: unknown) => e);
      // A snapshot taken now would still read the job as running; the signal must wait for the finish's row.
      await waitFor(async () => {
        const { rows } = await watcher.client.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT type, state FROM jobs%' AND datname = current_database()",
        );
        return rows.length > 0;
      });
      await client.query('COMMIT');
      expect(await sent).toBeInstanceOf(InvalidStateError);
    } finally {
      await client.end();
      await watcher.client.end();
    }
    expect(await store.workflows.listSignals(job.id)).toEqual([]);
  });
});

describe('signals refused over HTTP and on the command line', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a signal to a job that is not a workflow is a 409 invalid_state over HTTP, and exit 1 with one line from the CLI', async () => {
    h = await startHarness({ wire: true });
    const job = await h.rebound.enqueue('ok', {});
    const res = await h.call('POST', `/api/jobs/${job.id}/signal/go`, { body: { payload: 1 } });
    expect(res.status).toBe(409);
    expect(res.body.error).toEqual({ code: 'invalid_state', message: expect.stringContaining(`job ${job.id} (type "ok") is not a workflow`) });

    // `--jobs` gives the CLI the definitions that tell a plain job from a workflow.
    const record = await h.rebound.enqueue('record', {});
    const cli = await runCli(['--store', h.storeUrl, 'signal', record.id, 'go', '{}', '--jobs', FIXTURE_JOBS]);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stderr.trim().split('\n')).toEqual([expect.stringContaining(`error: invalid_state: job ${record.id} (type "record") is not a workflow`)]);
    expect(await h.rebound.store.workflows.listSignals(job.id)).toEqual([]);
    expect(await h.rebound.store.workflows.listSignals(record.id)).toEqual([]);
  });
});
