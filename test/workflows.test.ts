/**
 * Durable workflows through the library, on both stores: steps run once and
 * replay from history, sagas undo in reverse order, timers and signals sleep
 * without a worker, children fan out and join, states are guarded, and a
 * code change under an in-flight run is reported as a determinism error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BreakerOpenError, createRebound, defineJob, defineWorkflow, PermanentError, ValidationError, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const fast = { maxAttempts: 3, backoff: 'fixed', baseMs: 20, jitter: 'none' } as const;

describe.each(storeKinds)('workflows on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const open = async (jobs: JobDefinition[]) => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs });
    return rebound;
  };
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const finished = (id: string, timeoutMs = 20_000) =>
    waitFor(async () => {
      const j = await rebound.getJob(id);
      return j && ['completed', 'dead', 'cancelled', 'compensated'].includes(j.state) ? j : null;
    }, timeoutMs) as Promise<Job>;

  it('runs each finished step once: a failing step retries on its own policy and earlier steps are not repeated', async () => {
    const calls: string[] = [];
    let flaky = 0;
    const wf = defineWorkflow('signup', {
      retry: fast,
      run: async (ctx, input: { user: string }) => {
        const account = await ctx.step('create-account', () => (calls.push('create'), { id: `acct-${input.user}` }));
        const mail = await ctx.step(
          'send-mail',
          (info) => {
            calls.push(`mail#${info.attempt}`);
            if (++flaky < 3) throw new Error('smtp down');
            return { sent: true, key: info.idempotencyKey };
          },
          { retry: { maxAttempts: 5 } },
        );
        return { account, mail };
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('signup', { user: 'ada' });
    r.work({ concurrency: 2, pollIntervalMs: 20 });
    const job = await finished(id);
    expect(job.state).toBe('completed');
    expect(job.result).toEqual({ account: { id: 'acct-ada' }, mail: { sent: true, key: `rebound:${id}:2:send-mail` } });
    expect(calls).toEqual(['create', 'mail#1', 'mail#2', 'mail#3']);
    // Step failures slept (snoozed) instead of using the workflow's own attempts.
    expect(job.attempt).toBe(1);
    const wfd = await r.workflow(id);
    expect(wfd.status).toBe('completed');
    expect(wfd.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['create-account', 'completed', 1],
      ['send-mail', 'completed', 3],
    ]);
  });

  it('a step guarded by an open breaker sleeps until the breaker allows it, without using its attempts; a slow attempt times out', async () => {
    let refusals = 1;
    let slow = 1;
    const guard = {
      run: async <T,>(fn: () => Promise<T> | T): Promise<T> => {
        if (refusals-- > 0) throw new BreakerOpenError('mail', 'open', 30);
        return fn();
      },
    };
    const wf = defineWorkflow('guarded', {
      retry: { ...fast, maxAttempts: 2 },
      run: async (ctx) => {
        await ctx.step('mail', () => 'sent', { breaker: guard });
        return ctx.step('slow', () => (slow-- > 0 ? new Promise((r) => setTimeout(() => r('late'), 2000)) : 'quick'), { timeoutMs: 100 });
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('guarded', {});
    r.work({ pollIntervalMs: 20 });
    expect(await finished(id)).toMatchObject({ state: 'completed', result: 'quick' });
    const steps = (await r.workflow(id)).steps;
    expect(steps.map((s) => [s.name, s.attempts])).toEqual([
      ['mail', 1],
      ['slow', 2],
    ]);
  });

  it('a permanent failure at step 3 runs the compensations of steps 2 and 1, in that order, and ends compensated', async () => {
    const log: string[] = [];
    const wf = defineWorkflow('trip', {
      retry: fast,
      run: async (ctx) => {
        await ctx.step('flight', () => (log.push('book flight'), { pnr: 'F1' }), {
          compensate: (r: { pnr: string }) => void log.push(`cancel flight ${r.pnr}`),
        });
        await ctx.step('hotel', () => (log.push('book hotel'), { ref: 'H1' }), {
          compensate: (r: { ref: string }) => void log.push(`cancel hotel ${r.ref}`),
        });
        await ctx.step('car', () => {
          log.push('book car');
          throw new PermanentError('no cars left');
        });
      },
    });
    const r = await open([wf]);
    const ended: (string | undefined)[] = [];
    r.events.on('job:completed', (e) => ended.push(e.state));
    const { id } = await r.enqueue('trip', {});
    r.work({ pollIntervalMs: 20 });
    const job = await finished(id);
    expect(log).toEqual(['book flight', 'book hotel', 'book car', 'cancel hotel H1', 'cancel flight F1']);
    expect(job.state).toBe('compensated');
    expect(job.result).toMatchObject({ compensated: ['hotel', 'flight'] });
    const { history, workflow } = await r.inspect(id);
    expect(history.at(-1)?.kind).toBe('compensated');
    expect(workflow?.status).toBe('compensated');
    expect(ended).toEqual(['compensated']);
    const wfd = await r.workflow(id);
    expect(wfd.status).toBe('compensated');
    expect(wfd.steps.map((s) => [s.name, s.status, s.compensation])).toEqual([
      ['flight', 'completed', 'done'],
      ['hotel', 'completed', 'done'],
      ['car', 'failed', 'none'],
    ]);
  });

  it('a compensation that fails for good sends the run to the dead letter queue as compensation_failed, saying what was undone', async () => {
    let refundTries = 0;
    let refundDown = true;
    const wf = defineWorkflow('order-x', {
      retry: fast,
      run: async (ctx) => {
        await ctx.step('charge', () => ({ ok: 1 }), {
          compensate: () => {
            refundTries++;
            if (refundDown) throw new Error('refund API down');
          },
        });
        await ctx.step('reserve', () => ({ ok: 2 }), { compensate: () => {} });
        await ctx.step('ship', () => {
          throw new PermanentError('address invalid');
        });
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('order-x', {});
    r.work({ pollIntervalMs: 20 });
    const job = await finished(id);
    expect(job.state).toBe('dead');
    expect(job.deadReason).toBe('compensation_failed');
    expect(refundTries).toBe(3);
    expect(job.lastError?.message).toContain('undone: [reserve]');
    expect(job.lastError?.message).toContain('not undone: [charge]');
    expect(job.lastError?.message).toContain('address invalid');
    const wfd = await r.workflow(id);
    expect(wfd.steps.map((s) => s.compensation)).toEqual(['failed', 'done', 'none']);

    // Redriven once the refund API is back: it resumes undoing where it stopped, and ends compensated.
    refundDown = false;
    await r.redrive({ ids: [id] });
    const again = await waitFor(async () => ((await r.getJob(id))?.state === 'compensated' ? r.getJob(id) : null));
    expect(again?.result).toMatchObject({ compensated: ['reserve', 'charge'] });
    expect(refundTries).toBe(4);
    expect((await r.workflow(id)).steps.map((s) => s.compensation)).toEqual(['done', 'done', 'none']);
  });

  it('a compensating run whose code no longer matches its history undoes nothing more and goes to the dead letter queue, until a redrive with fixed code', async () => {
    const undone: string[] = [];
    let refundBlips = 1;
    const order = (first: string) =>
      defineWorkflow('order-y', {
        retry: { ...fast, baseMs: 1500 },
        run: async (ctx) => {
          await ctx.step(first, () => 1, { compensate: () => void undone.push(first) });
          await ctx.step('reserve', () => 2, {
            compensate: () => {
              if (refundBlips-- > 0) throw new Error('inventory API blip');
              undone.push('reserve');
            },
          });
          await ctx.step('ship', () => {
            throw new PermanentError('address invalid');
          });
        },
      });
    const r = await open([order('charge')]);
    const { id } = await r.enqueue('order-y', {});
    const w = r.work({ pollIntervalMs: 20 });
    // Compensating: the compensation of reserve failed once and sleeps before its retry.
    await waitFor(async () => (await r.workflow(id).catch(() => null))?.steps[1]?.compensationAttempts === 1 && (await r.getJob(id))?.state === 'scheduled');
    await w.stop();
    // A deploy renames the first step under the run.
    r.define(order('charge-card'));
    const w2 = r.work({ pollIntervalMs: 20 });
    const job = await finished(id);
    expect(job).toMatchObject({ state: 'dead', deadReason: 'compensation_failed', lastError: { name: 'DeterminismError' } });
    expect(job.lastError?.message).toContain('compensation stopped, nothing more was undone');
    expect(job.lastError?.message).toContain('undone so far: []');
    expect(job.lastError?.message).toContain('address invalid');
    expect(undone).toEqual([]);
    const run = await r.workflow(id);
    expect(run.status).toBe('compensating');
    expect(run.steps.map((s) => s.compensation)).toEqual(['none', 'pending', 'none']);

    // The code is fixed and the job redriven: it finishes undoing.
    await w2.stop();
    r.define(order('charge'));
    r.work({ pollIntervalMs: 20 });
    await r.redrive({ ids: [id] });
    const again = await waitFor(async () => ((await r.getJob(id))?.state === 'compensated' ? r.getJob(id) : null));
    expect(again?.result).toMatchObject({ compensated: ['reserve', 'charge'] });
    expect(undone).toEqual(['reserve', 'charge']);
  });

  it('a redriven run retries the step that failed for good with a fresh budget, without repeating finished steps', async () => {
    let broken = true;
    const calls: string[] = [];
    const wf = defineWorkflow('redo', {
      retry: fast,
      run: async (ctx) => {
        await ctx.step('first', () => void calls.push('first'));
        return ctx.step('second', () => {
          calls.push('second');
          if (broken) throw new Error('still broken');
          return 'ok';
        });
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('redo', {});
    r.work({ pollIntervalMs: 20 });
    expect((await finished(id)).deadReason).toBe('permanent');
    expect(calls).toEqual(['first', 'second', 'second', 'second']);
    broken = false;
    await r.redrive({ ids: [id] });
    await waitFor(async () => (await r.getJob(id))?.state === 'completed');
    expect(calls).toEqual(['first', 'second', 'second', 'second', 'second']);
    expect((await r.workflow(id)).steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['first', 'completed', 1],
      ['second', 'completed', 1],
    ]);
  });

  it('a sleeping workflow holds no worker: with concurrency 1 another job runs while it sleeps', async () => {
    const order: string[] = [];
    const wf = defineWorkflow('nap', {
      run: async (ctx) => {
        await ctx.step('before', () => void order.push('before'));
        await ctx.sleep(1500);
        await ctx.step('after', () => void order.push('after'));
      },
    });
    const other = defineJob('other', { handler: async () => void order.push('other') });
    const r = await open([wf, other]);
    const nap = await r.enqueue('nap', {});
    r.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(async () => (await r.getJob(nap.id))?.state === 'scheduled');
    const o = await r.enqueue('other', {});
    expect((await finished(o.id)).state).toBe('completed');
    expect((await r.getJob(nap.id))?.state).toBe('scheduled');
    expect((await r.workflow(nap.id)).waiting).toBe('timer');
    expect((await finished(nap.id)).state).toBe('completed');
    expect(order).toEqual(['before', 'other', 'after']);
  });

  it('a signal resumes a waiting workflow, and a timeout fires when none comes', async () => {
    const wf = defineWorkflow('approval', {
      run: async (ctx, input: { timeoutMs: number }) => {
        try {
          const decision = await ctx.waitFor<{ approved: boolean }>('decision', { timeoutMs: input.timeoutMs });
          return { decision };
        } catch (err) {
          if ((err as { code?: string }).code === 'signal_timeout') return { timedOut: true };
          throw err;
        }
      },
    });
    const r = await open([wf]);
    const waiting = await r.enqueue('approval', { timeoutMs: 60_000 });
    const lonely = await r.enqueue('approval', { timeoutMs: 300 });
    r.work({ pollIntervalMs: 20 });
    // Asleep: it says what it waits for, and its job is back in the store as scheduled (no lease).
    await waitFor(async () => (await r.workflow(waiting.id).catch(() => null))?.waiting === 'signal:decision');
    await waitFor(async () => (await r.getJob(waiting.id))?.state === 'scheduled');
    expect((await r.getJob(waiting.id))?.leaseExpiresAt).toBeNull();
    const sent = await r.signal(waiting.id, 'decision', { approved: true });
    expect(sent.woke).toBe(true);
    expect(await finished(waiting.id)).toMatchObject({ state: 'completed', result: { decision: { approved: true } } });
    expect(await finished(lonely.id)).toMatchObject({ state: 'completed', result: { timedOut: true } });
    await expect(r.signal(waiting.id, 'decision', {})).rejects.toMatchObject({ code: 'invalid_state' });
    await expect(r.signal('999999', 'decision', {})).rejects.toMatchObject({ code: 'not_found' });
  });

  it('a child fan-out of 100 jobs joins correctly, without spawning twice on replay', async () => {
    const square = defineJob('square', { handler: async (p: { n: number }) => p.n * p.n });
    const wf = defineWorkflow('fan-out', {
      run: async (ctx, input: { n: number }) => {
        const children = [];
        for (let i = 1; i <= input.n; i++) children.push(await ctx.spawn('square', { n: i }));
        const outcomes = await ctx.join(children);
        return { sum: outcomes.reduce((s, o) => s + (o.result as number), 0), states: [...new Set(outcomes.map((o) => o.state))] };
      },
    });
    const r = await open([wf, square]);
    const { id } = await r.enqueue('fan-out', { n: 100 });
    r.work({ concurrency: 8, pollIntervalMs: 20 });
    const job = await finished(id, 40_000);
    expect(job.result).toEqual({ sum: (100 * 101 * 201) / 6, states: ['completed'] });
    expect(await r.countJobs({ type: 'square' })).toBe(100);
    const kids = await r.listJobs({ type: 'square', limit: 200 });
    expect(kids.every((k) => k.parentId === id)).toBe(true);
  });

  it('declared states: legal moves are recorded and visible on the job; an illegal move fails the run', async () => {
    const states = { Pending: ['Charged', 'Cancelled'], Charged: ['Shipped'], Shipped: ['Done'], Done: [], Cancelled: [] };
    const wf = defineWorkflow('ship', {
      states,
      run: async (ctx, input: { skip: boolean }) => {
        await ctx.transition('Charged');
        if (input.skip) await ctx.transition('Done');
        await ctx.waitFor('go');
        await ctx.transition('Shipped');
        await ctx.transition('Done');
        return ctx.state;
      },
    });
    const r = await open([wf]);
    const good = await r.enqueue('ship', { skip: false });
    const bad = await r.enqueue('ship', { skip: true });
    r.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await r.workflow(good.id).catch(() => null))?.waiting === 'signal:go');
    expect((await r.inspect(good.id)).workflow?.state).toBe('Charged');
    await r.signal(good.id, 'go');
    expect(await finished(good.id)).toMatchObject({ state: 'completed', result: 'Done' });
    expect((await r.workflow(good.id)).state).toBe('Done');
    const dead = await finished(bad.id);
    expect(dead.state).toBe('dead');
    expect(dead.lastError?.message).toContain('cannot move from "Charged" to "Done"');
  });

  it('a renamed step is reported as a determinism error naming the step; the version a run started with is kept', async () => {
    const v1 = defineWorkflow('renamed', {
      version: 1,
      run: async (ctx) => {
        await ctx.step('charge-card', () => 1);
        await ctx.waitFor('continue');
        return ctx.version;
      },
    });
    const r = await open([v1]);
    const { id } = await r.enqueue('renamed', {});
    const w = r.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await r.workflow(id).catch(() => null))?.waiting === 'signal:continue');
    await w.stop();
    // A deploy renames the step (and bumps the version) while the run is in flight.
    r.define(
      defineWorkflow('renamed', {
        version: 2,
        run: async (ctx) => {
          await ctx.step(ctx.version >= 2 ? 'charge' : 'charge-card', () => 1);
          await ctx.waitFor('continue');
          return ctx.version;
        },
      }),
    );
    const kept = await r.enqueue('renamed', {}, { idempotencyKey: 'unused' });
    const w2 = r.work({ pollIntervalMs: 20 });
    await r.signal(id, 'continue');
    // The in-flight run keeps version 1 and its old path; a new run takes version 2.
    expect(await finished(id)).toMatchObject({ state: 'completed', result: 1 });
    await waitFor(async () => (await r.workflow(kept.id).catch(() => null))?.waiting === 'signal:continue');
    expect((await r.workflow(kept.id)).version).toBe(2);
    expect((await r.workflow(kept.id)).steps[0].name).toBe('charge');

    // Now a rename without a version branch (deployed as a new worker: a running one keeps its definitions).
    await w2.stop();
    r.define(
      defineWorkflow('renamed', {
        version: 2,
        run: async (ctx) => {
          await ctx.step('charge-the-card', () => 1);
          await ctx.waitFor('continue');
        },
      }),
    );
    r.work({ pollIntervalMs: 20 });
    await r.signal(kept.id, 'continue');
    const dead = await finished(kept.id);
    expect(dead.state).toBe('dead');
    expect(dead.lastError?.name).toBe('DeterminismError');
    expect(dead.lastError?.message).toContain('step "charge-the-card" at position 1');
    expect(dead.lastError?.message).toContain('"charge"');
  });

  it('bad workflow definitions and bad calls are refused with a ValidationError naming the field', async () => {
    expect(() => defineWorkflow('w', { run: 'nope' } as never)).toThrow(ValidationError);
    expect(() => defineWorkflow('w', { version: 0, run: async () => {} })).toThrow(/version/);
    expect(() => defineWorkflow('w', { states: { A: ['B'] }, run: async () => {} })).toThrow(/"B" is not a declared state/);
    const kid = defineJob('kid', { schema: { safeParse: (v: any) => (typeof v?.n === 'number' ? { success: true, data: v } : { success: false, error: { issues: [{ path: ['n'], message: 'must be a number' }] } }) }, handler: async () => 1 });
    const wf = defineWorkflow('bad-calls', {
      run: async (ctx, input: { what: string }) => {
        if (input.what === 'name') await ctx.step('', () => 1);
        if (input.what === 'child') await ctx.spawn('kid', { n: 'x' });
      },
    });
    const r = await open([wf, kid]);
    const a = await r.enqueue('bad-calls', { what: 'name' });
    const b = await r.enqueue('bad-calls', { what: 'child' });
    r.work({ pollIntervalMs: 20 });
    // Not retried: a code bug does not get better.
    expect(await finished(a.id)).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { name: 'ValidationError' } });
    expect(await finished(b.id)).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 1, lastError: { message: expect.stringContaining('payload.n') } });
    expect(await r.countJobs({ type: 'kid' })).toBe(0);
  });
  it('an attempt that timed out goes no further: its later steps and writes are refused, so no step runs twice', async () => {
    const calls: string[] = [];
    let release!: () => void;
    const slowA = new Promise<void>((r) => (release = r));
    const wf = defineWorkflow('zombie', {
      timeoutMs: 300,
      retry: fast,
      run: async (ctx) => {
        // The first attempt's step a outlives the job's timeout; the retry runs a again and goes on to b.
        await ctx.step('a', async (info) => {
          calls.push(`a#${info.attempt}`);
          if (info.attempt === 1) await slowA;
          return 1;
        });
        await ctx.step('b', () => (calls.push('b'), 2));
        return 'ok';
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('zombie', {});
    r.work({ concurrency: 2, pollIntervalMs: 20 });
    expect((await finished(id)).state).toBe('completed');
    // The timed-out attempt's step a now returns; before the fence it went on to record a and run b again.
    release();
    await new Promise((res) => setTimeout(res, 200));
    expect(calls).toEqual(['a#1', 'a#2', 'b']);
    const steps = (await r.workflow(id)).steps.map((s) => `${s.name}:${s.status}:${s.attempts}`);
    expect(steps).toEqual(['a:completed:2', 'b:completed:1']);
  });

  it('cancelling a waiting workflow cancels its unfinished children and marks its run cancelled', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const leaf = defineJob('leaf', { handler: async () => held });
    const quick = defineJob('quick', { handler: async () => 'done' });
    const wf = defineWorkflow('parent', {
      run: async (ctx) => {
        const finishedChild = await ctx.spawn('quick', {});
        const slow = await ctx.spawn('leaf', {});
        await ctx.waitFor('go');
        return ctx.join([finishedChild, slow]);
      },
    });
    const r = await open([wf, leaf, quick]);
    const { id } = await r.enqueue('parent', {});
    const worker = r.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await r.workflow(id).catch(() => null))?.waiting === 'signal:go');
    await waitFor(async () => (await r.countJobs({ type: 'quick', state: 'completed' })) === 1 && (await r.countJobs({ type: 'leaf', state: 'running' })) === 1);
    const cancelled: string[] = [];
    r.events.on('job:cancelled', (e) => cancelled.push(e.job.type));
    await r.cancel(id, { actor: 'alice' });
    release();
    await worker.stop();
    expect(await r.getJob(id)).toMatchObject({ state: 'cancelled' });
    expect(await r.workflow(id)).toMatchObject({ status: 'cancelled', waiting: null });
    expect(await r.countJobs({ type: 'leaf', state: 'cancelled' })).toBe(1);
    expect(await r.countJobs({ type: 'quick', state: 'completed' })).toBe(1);
    expect(cancelled.sort()).toEqual(['leaf', 'parent']);
  });

  it('a step that fails for good beside one still running (Promise.all) waits for it, and compensates it too', async () => {
    const log: string[] = [];
    const wf = defineWorkflow('parallel', {
      retry: { ...fast, maxAttempts: 1 },
      run: async (ctx) => {
        await ctx.step('reserve', () => (log.push('reserve'), 1), { compensate: () => void log.push('unreserve') });
        await Promise.all([
          ctx.step('charge', async () => (await new Promise((res) => setTimeout(res, 300)), log.push('charged'), 1), {
            compensate: () => void log.push('refund'),
          }),
          ctx.step('validate', async () => {
            await new Promise((res) => setTimeout(res, 30));
            throw new PermanentError('invalid');
          }),
        ]);
        return 'ok';
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('parallel', {});
    r.work({ concurrency: 2, pollIntervalMs: 20 });
    const job = await finished(id);
    expect(job.state).toBe('compensated');
    expect(log).toEqual(['reserve', 'charged', 'refund', 'unreserve']);
    const steps = (await r.workflow(id)).steps.map((s) => `${s.name}:${s.status}:${s.compensation}`);
    expect(steps).toEqual(['reserve:completed:done', 'charge:completed:done', 'validate:failed:none']);
  });
  it('a step that finishes beside a sibling that failed and sleeps for its retry (Promise.all) is recorded, and does not run again', async () => {
    const calls: string[] = [];
    let chargeStarted!: () => void;
    const started = new Promise<void>((res) => (chargeStarted = res));
    const wf = defineWorkflow('par-snooze', {
      retry: fast,
      run: async (ctx) =>
        Promise.all([
          ctx.step('a', async (info) => {
            calls.push(`a#${info.attempt}`);
            if (info.attempt > 1) return 'A';
            await started;
            throw new Error('blip');
          }),
          // Still running when a's failure puts the run to sleep. It finishes once the next execution has begun (or
          // after a second, when nothing else can begin): its result must have been recorded by the execution that ran it.
          ctx.step('charge', async () => {
            calls.push('charge');
            chargeStarted();
            const end = Date.now() + 1000;
            while (!calls.includes('a#2') && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
            return 'B';
          }),
        ]),
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('par-snooze', {});
    r.work({ concurrency: 2, pollIntervalMs: 20 });
    expect(await finished(id)).toMatchObject({ state: 'completed', result: ['A', 'B'] });
    // The two steps start in either order (each first reads its record); charge ran once, a's retry came last.
    expect([...calls].sort()).toEqual(['a#1', 'a#2', 'charge']);
    expect(calls.at(-1)).toBe('a#2');
    expect((await r.workflow(id)).steps.map((s) => `${s.name}:${s.status}:${s.attempts}`)).toEqual(['a:completed:2', 'charge:completed:1']);
  });

  it('a run that failed for good whose dead-lettering write was lost fails again when it comes back; only a redrive retries it', async () => {
    const calls: string[] = [];
    const wf = defineWorkflow('declined', {
      leaseMs: 400,
      retry: fast,
      run: async (ctx) => {
        await ctx.step('charge', (info) => {
          calls.push(`charge#${info.attempt}`);
          throw new PermanentError('card declined');
        });
      },
    });
    const r = await open([wf]);
    // The worker's write that sends the job to the dead letter queue fails on each of its four tries: the lease runs
    // out and the job comes back.
    const failJob = r.store.failJob.bind(r.store);
    let blips = 4;
    r.store.failJob = async (p) => {
      if (blips-- > 0) throw new Error('connection reset (injected)');
      return failJob(p);
    };
    const { id } = await r.enqueue('declined', {});
    r.work({ concurrency: 1, pollIntervalMs: 20, rescueIntervalMs: 100 });
    const job = await finished(id);
    expect(job).toMatchObject({ state: 'dead', deadReason: 'permanent', attempt: 2 });
    expect(job.lastError?.message).toMatch(/already failed for good: .*card declined/);
    expect(calls).toEqual(['charge#1']);
    // A redrive gives the failed step a fresh budget.
    await r.redrive({ ids: [id] });
    await waitFor(async () => (calls.length === 2 ? true : null), 10_000);
    expect(calls).toEqual(['charge#1', 'charge#1']);
  });
});
