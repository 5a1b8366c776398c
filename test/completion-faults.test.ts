/**
 * What a worker does when the store will not keep an attempt's outcome, on both stores. The faults are real:
 * a trigger in the test's own store makes the database refuse the completion, and values PostgreSQL cannot
 * store (U+0000, unpaired surrogates) go through the real write paths.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, Snooze, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, schemaClient, storeKinds, waitFor, type StoreKind } from './helpers/stores.ts';

/** A trigger that makes the store refuse to move a running job to any of `states`, until `lift()`. */
async function refuseOutcomes(kind: StoreKind, url: string, states: string[]): Promise<{ lift: () => Promise<void> }> {
  const list = states.map((st) => `'${st}'`).join(', ');
  if (kind === 'sqlite') {
    const db = new Database(url.replace(/^sqlite:/, ''));
    db.exec(`CREATE TRIGGER refuse_outcome BEFORE UPDATE OF state ON jobs WHEN OLD.state = 'running' AND NEW.state IN (${list})
             BEGIN SELECT RAISE(ABORT, 'injected: outcome refused'); END`);
    return {
      lift: async () => {
        db.exec('DROP TRIGGER IF EXISTS refuse_outcome');
        db.close();
      },
    };
  }
  const { client, schema } = await schemaClient(url);
  await client.query(`CREATE FUNCTION "${schema}".refuse_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF OLD.state = 'running' AND NEW.state IN (${list}) THEN RAISE EXCEPTION 'injected: outcome refused'; END IF; RETURN NEW; END $$`);
  await client.query(`CREATE TRIGGER refuse_outcome BEFORE UPDATE ON "${schema}".jobs FOR EACH ROW EXECUTE FUNCTION "${schema}".refuse_outcome()`);
  return {
    lift: async () => {
      await client.query(`DROP TRIGGER IF EXISTS refuse_outcome ON "${schema}".jobs`);
      await client.end();
    },
  };
}

describe.each(storeKinds)('outcomes the store will not keep, on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const open = async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    return rebound;
  };

  it('a completion the store refuses once is tried again: the handler ran once and the job completes on its first attempt', async () => {
    const r = await open();
    let calls = 0;
    r.define(defineJob('charge', { handler: async () => ({ charged: ++calls }) }));
    const fault = await refuseOutcomes(kind, url, ['completed']);
    const refusals: string[] = [];
    r.events.on('worker:error', (e) => {
      refusals.push(e.during);
      if (refusals.length === 1) void fault.lift();
    });
    const { id } = await r.enqueue('charge', {});
    const worker = r.work();
    const job = await waitFor(async () => ((await r.getJob(id))?.state === 'completed' ? r.getJob(id) : null));
    await worker.stop();
    expect(refusals[0]).toBe('complete; try 2 follows');
    expect(calls).toBe(1);
    expect(job).toMatchObject({ attempt: 1, result: { charged: 1 } });
  });

  it('a completion refused on every try fails the attempt with an error that says so; the retry completes', async () => {
    const r = await open();
    let calls = 0;
    r.define(defineJob('charge', { handler: async () => ({ charged: ++calls }), retry: { maxAttempts: 3, baseMs: 10 } }));
    const fault = await refuseOutcomes(kind, url, ['completed']);
    r.events.on('job:retry', () => void fault.lift());
    const { id } = await r.enqueue('charge', {});
    const worker = r.work();
    await waitFor(async () => (await r.getJob(id))?.state === 'completed');
    await worker.stop();
    const { job, attempts } = await r.inspect(id);
    expect(calls).toBe(2);
    expect(job).toMatchObject({ attempt: 2, result: { charged: 2 } });
    expect(attempts[0]).toMatchObject({ outcome: 'retried' });
    expect(attempts[0].error?.message).toMatch(/^the handler succeeded, but its completion could not be recorded \(.*injected: outcome refused/);
  });

  it.each([
    ['a failed attempt', 'fail', new Error('downstream said no'), 'retried'],
    ['a snooze', 'snooze', new Snooze(0, 'not yet'), 'snoozed'],
  ] as const)('%s the store refuses once is tried again: recorded as such, and no crash is counted', async (_name, during, thrown, outcome) => {
    const r = await open();
    let calls = 0;
    r.define(
      defineJob('flaky', {
        retry: { maxAttempts: 3, baseMs: 10 },
        handler: async () => {
          if (++calls === 1) throw thrown;
          return 'done';
        },
      }),
    );
    const fault = await refuseOutcomes(kind, url, ['scheduled', 'available']);
    const refusals: string[] = [];
    r.events.on('worker:error', (e) => {
      refusals.push(e.during);
      if (refusals.length === 1) void fault.lift();
    });
    const { id } = await r.enqueue('flaky', {});
    const worker = r.work({ pollIntervalMs: 10 });
    await waitFor(async () => (await r.getJob(id))?.state === 'completed');
    await worker.stop();
    const { job, attempts, history } = await r.inspect(id);
    expect(refusals).toEqual([`${during}; try 2 follows`]);
    expect(calls).toBe(2);
    expect(job).toMatchObject({ state: 'completed', crashCount: 0, result: 'done' });
    expect(attempts.map((a) => a.outcome)).toEqual([outcome, 'completed']);
    expect(history.map((h) => h.kind)).not.toContain('lease_expired');
  });

  it('a result with U+0000 or a lone surrogate fails the job for good, once, naming it; the same on both stores', async () => {
    const r = await open();
    let calls = 0;
    r.define(defineJob('nul', { handler: async () => ({ text: `a\u0000b${++calls}` }) }));
    r.define(defineJob('surrogate', { handler: async () => ['\uD800'] }));
    const a = await r.enqueue('nul', {});
    const b = await r.enqueue('surrogate', {});
    const worker = r.work();
    await waitFor(async () => (await r.countJobs({ state: 'dead' })) === 2);
    await worker.stop();
    for (const id of [a.id, b.id]) {
      const job = (await r.getJob(id))!;
      expect(job).toMatchObject({ attempt: 1, deadReason: 'permanent', result: null });
      expect(job.lastError).toMatchObject({ code: 'unstorable_result' });
      expect(job.lastError?.message).toMatch(/^the handler's result holds U\+0000 or an unpaired UTF-16 surrogate/);
    }
    expect(calls).toBe(1);
  });

  it("an error whose text PostgreSQL cannot store is kept with U+FFFD in its place; its retries are counted as usual", async () => {
    const r = await open();
    r.define(
      defineJob('bad-error', {
        handler: async () => {
          const e = new Error(`boom\u0000 at \uDC00 ${'x'.repeat(20_000)}`);
          e.name = 'Weird\u0000Error';
          throw e;
        },
        retry: { maxAttempts: 2, baseMs: 10 },
      }),
    );
    const { id } = await r.enqueue('bad-error', {});
    const worker = r.work();
    await waitFor(async () => (await r.getJob(id))?.state === 'dead');
    await worker.stop();
    const { job, attempts } = await r.inspect(id);
    expect(job).toMatchObject({ attempt: 2, deadReason: 'exhausted' });
    expect(job.lastError?.name).toBe('Weird\uFFFDError');
    expect(job.lastError?.message.startsWith('boom\uFFFD at \uFFFD x')).toBe(true);
    expect(job.lastError?.message).toMatch(/… \(\d+ more characters\)$/);
    expect(job.lastError!.message.length).toBeLessThan(8_100);
    expect(attempts.map((a) => a.outcome)).toEqual(['retried', 'dead']);
  });

  it('a workflow step or once() value with U+0000 fails for good, recorded as the step that could not be kept', async () => {
    const r = await open();
    let stepRuns = 0;
    r.define(
      defineWorkflow('wf-nul', {
        run: async (wf) => {
          await wf.step('fine', () => 1);
          return wf.step('bin', () => `x${++stepRuns}\u0000`);
        },
      }),
    );
    let onceRuns = 0;
    r.define(defineJob('once-nul', { handler: async (_p, ctx) => ctx.once('k', () => `y${++onceRuns}\u0000`) }));
    const w = await r.enqueue('wf-nul', {});
    const o = await r.enqueue('once-nul', {});
    const worker = r.work();
    await waitFor(async () => (await r.countJobs({ state: 'dead' })) === 2);
    await worker.stop();
    const wf = await r.workflow(w.id);
    expect(wf.steps.map((s) => [s.name, s.status])).toEqual([
      ['fine', 'completed'],
      ['bin', 'failed'],
    ]);
    expect(wf.steps[1].error?.message).toMatch(/^the result of step "bin" holds U\+0000/);
    expect(stepRuns).toBe(1);
    expect((await r.getJob(o.id))?.lastError?.message).toMatch(/^the value of once\("k"\) holds U\+0000/);
    expect(onceRuns).toBe(1);
  });
});
