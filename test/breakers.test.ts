/**
 * Circuit breakers through the library, on both stores: an outage of a real
 * local HTTP service trips the breaker, jobs wait without using attempts, the
 * breaker closes after recovery, and the waiting and dead jobs complete.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BreakerOpenError, ConfigError, createRebound, defineJob, PermanentError, type Rebound, type ReboundEvents } from '../src/index.ts';
import { startDownstream, type Downstream } from './helpers/downstream.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

async function charge(url: string) {
  const res = await fetch(url, { method: 'POST' });
  if (!res.ok) throw new Error(`payment service answered ${res.status}`);
  return res.json();
}

describe.each(storeKinds)('circuit breakers on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  let downstream: Downstream | undefined;
  afterEach(async () => {
    await rebound?.close();
    await downstream?.close();
    downstream = undefined;
    await dropStore(url);
  });

  it('an outage trips the breaker, jobs wait without using attempts, and after recovery the waiting and dead jobs complete', async () => {
    downstream = await startDownstream();
    const service = downstream;
    service.up = false;
    url = freshStoreUrl(kind);
    const chargeJob = defineJob('charge', {
      breaker: { name: 'payments', consecutiveFailures: 3, minCalls: 100, cooldownMs: 1500 },
      retry: { baseMs: 20, maxMs: 20 },
      handler: async () => charge(service.url),
    });
    rebound = await createRebound({ store: url, jobs: [chargeJob] });
    const changes: ReboundEvents['breaker:changed'][] = [];
    rebound.events.on('breaker:changed', (e) => changes.push(e));
    // Two orders with a single attempt die during the outage; the rest keep their attempts.
    const doomed = await rebound.enqueueMany([0, 1].map(() => ({ type: 'charge', payload: {}, opts: { maxAttempts: 1, priority: -1 } })));
    const waiting = await rebound.enqueueMany([0, 1, 2, 3].map(() => ({ type: 'charge', payload: {}, opts: { maxAttempts: 5 } })));
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });

    await waitFor(async () => (await rebound.breakers.get('payments')).state === 'open');
    for (const d of doomed) expect((await rebound.getJob(d.id))?.state).toBe('dead');
    const callsAtTrip = service.calls.down;
    expect(callsAtTrip).toBe(3);
    // A job claimed just as the breaker tripped is put back to sleep, its attempt returned.
    await waitFor(async () => (await rebound.countJobs({ state: 'running' })) === 0);
    const attemptsAtTrip = await Promise.all(waiting.map(async (w) => (await rebound.getJob(w.id))!.attempt));
    await sleep(700); // well inside the cool-down
    const attemptsLater = await Promise.all(waiting.map(async (w) => (await rebound.getJob(w.id))!.attempt));
    expect(attemptsLater).toEqual(attemptsAtTrip);
    expect(service.calls.down).toBe(callsAtTrip);
    for (const w of waiting) expect(['available', 'scheduled']).toContain((await rebound.getJob(w.id))?.state);

    service.up = true;
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 6, 20_000);
    await worker.stop();
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual(['closed>open', 'open>half_open', 'half_open>closed']);
    const history = await rebound.inspect(doomed[0].id);
    expect(history.history.find((h) => h.kind === 'redriven')?.data).toMatchObject({ actor: 'auto-redrive:breaker:payments' });
    const stored = await rebound.breakers.events({ name: 'payments' });
    expect(stored.map((e) => e.to)).toEqual(['closed', 'half_open', 'open']);
    // No waiting job spent more than the one attempt that failed before the trip and the one that succeeded.
    for (const w of waiting) expect((await rebound.getJob(w.id))!.attempt).toBeLessThanOrEqual(2);
  });

  it('ctx.breaker guards one call: while forced open the job sleeps without using an attempt, and runs once closed', async () => {
    url = freshStoreUrl(kind);
    const calls: number[] = [];
    const job = defineJob('notify', {
      handler: async (_p, ctx) => ctx.breaker('sms').run(async () => calls.push(ctx.attempt)),
    });
    rebound = await createRebound({ store: url, jobs: [job] });
    const actions: ReboundEvents['operator:action'][] = [];
    rebound.events.on('operator:action', (e) => actions.push(e));
    await rebound.breakers.force('sms', 'open', { actor: 'ops' });
    await expect(rebound.breakers.guard('sms').run(() => 1)).rejects.toBeInstanceOf(BreakerOpenError);
    const { id } = await rebound.enqueue('notify', {});
    const worker = rebound.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.inspect(id)).history.some((h) => h.kind === 'snoozed'));
    expect(calls).toEqual([]);
    expect((await rebound.getJob(id))!.attempt).toBe(0);
    await rebound.breakers.force('sms', 'closed', { actor: 'ops' });
    await waitFor(async () => (await rebound.getJob(id))?.state === 'completed', 15_000);
    await worker.stop();
    expect(calls).toEqual([1]);
    expect(actions.map((a) => [a.action, a.target, a.actor])).toEqual([
      ['breaker.force_open', 'breaker:sms', 'ops'],
      ['breaker.force_close', 'breaker:sms', 'ops'],
    ]);
    expect(await rebound.breakers.get('sms')).toMatchObject({ state: 'closed', forced: 'closed' });
    expect((await rebound.breakers.reset('sms')).forced).toBeNull();
  });

  it('permanent errors do not count against a breaker; transient ones do', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [defineJob('noop', { handler: () => null })] });
    rebound.breakers.configure('api', { consecutiveFailures: 2 });
    const guard = rebound.breakers.guard('api');
    const breakers = rebound.store.breakers;
    const update = breakers.update.bind(breakers);
    let writes = 0;
    breakers.update = (...args) => {
      writes++;
      return update(...args);
    };
    for (let i = 0; i < 5; i++) await expect(guard.run(() => Promise.reject(new PermanentError('bad request')))).rejects.toThrow('bad request');
    expect((await rebound.breakers.get('api')).state).toBe('closed');
    // Not counted, and no probe slot to free: the breaker is not even locked.
    expect(writes).toBe(0);
    for (let i = 0; i < 2; i++) await expect(guard.run(() => Promise.reject(new Error('503')))).rejects.toThrow('503');
    const view = await rebound.breakers.get('api');
    expect(view).toMatchObject({ state: 'open', blocking: true, lastError: 'Error: 503' });
    expect(view.openUntil! - view.updatedAt).toBe(30_000);
  });

  it('outcomes reported together are written together, every one counted; calls admitted together share a read', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const breakers = rebound.store.breakers;
    const update = breakers.update.bind(breakers);
    const get = breakers.get.bind(breakers);
    let writes = 0;
    let reads = 0;
    breakers.update = (...args) => {
      writes++;
      return update(...args);
    };
    breakers.get = (...args) => {
      reads++;
      return get(...args);
    };
    const guard = rebound.breakers.guard('search');
    const calls = 200;
    await Promise.all(Array.from({ length: calls }, (_, i) => guard.run(async () => i)));
    // A success is written after its call returns (it cannot move the breaker): flush waits for the writes.
    await rebound.breakers.flush();
    expect((await rebound.breakers.get('search')).window).toMatchObject({ calls, failures: 0 });
    // One write per call made every call wait for the breaker row's lock in turn.
    expect(writes).toBeLessThan(calls / 4);
    expect(reads).toBeLessThan(calls / 4);
  });

  it('a success returns without waiting for its write; a failure waits, so the next call is admitted against it', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url });
    const breakers = rebound.store.breakers;
    const update = breakers.update.bind(breakers);
    let open!: () => void;
    const held = new Promise<void>((r) => (open = r));
    breakers.update = async (...args) => {
      await held;
      return update(...args);
    };
    const guard = rebound.breakers.guard('held');
    const late = sleep(5_000).then(() => 'late');
    expect(await Promise.race([guard.run(async () => 'ok'), late])).toBe('ok');
    const failed = guard.run(async () => {
      throw new Error('connection reset');
    }).catch((e: Error) => e.message);
    expect(await Promise.race([failed, sleep(300).then(() => 'waiting')])).toBe('waiting');
    open();
    expect(await failed).toBe('connection reset');
    await rebound.breakers.flush();
    expect((await rebound.breakers.get('held')).window).toMatchObject({ calls: 2, failures: 1 });
  });

  it('a call admitted before the trip that fails while half-open does not reopen the breaker; the probe closes it', async () => {
    url = freshStoreUrl(kind);
    let clock = Date.now();
    rebound = await createRebound({ store: url, now: () => clock });
    rebound.breakers.configure('svc', { consecutiveFailures: 1, cooldownMs: 1000 });
    const guard = rebound.breakers.guard('svc');
    let failSlow: (() => void) | undefined;
    const slow = guard.run(() => new Promise((_, reject) => (failSlow = () => reject(new Error('slow call failed'))))).catch((e: Error) => e.message);
    await waitFor(() => failSlow);
    await expect(guard.run(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect((await rebound.breakers.get('svc')).state).toBe('open');
    clock += 1000;
    let endProbe: (() => void) | undefined;
    const probe = guard.run(() => new Promise<string>((resolve) => (endProbe = () => resolve('ok'))));
    await waitFor(() => endProbe);
    failSlow!();
    expect(await slow).toBe('slow call failed');
    expect(await rebound.breakers.get('svc')).toMatchObject({ state: 'half_open', trips: 1, lastError: 'Error: slow call failed' });
    endProbe!();
    expect(await probe).toBe('ok');
    expect(await rebound.breakers.get('svc')).toMatchObject({ state: 'closed', trips: 0 });
  });

  it('a probe that outlasts probeTimeoutMs keeps its slot while it runs: no second probe beside it, and its success closes the breaker', async () => {
    url = freshStoreUrl(kind);
    let clock = Date.now();
    rebound = await createRebound({ store: url, now: () => clock });
    rebound.breakers.configure('svc', { consecutiveFailures: 1, cooldownMs: 1000, probeTimeoutMs: 300 });
    const guard = rebound.breakers.guard('svc');
    await expect(guard.run(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    clock += 1000;
    let endProbe: (() => void) | undefined;
    const probe = guard.run(() => new Promise<string>((resolve) => (endProbe = () => resolve('ok'))));
    await waitFor(() => endProbe);
    // Far past the probe's timeout, the call still runs: its process renews the slot.
    clock += 60_000;
    await waitFor(async () => Object.values((await rebound.store.breakers.get('svc'))!.probes).some((until) => until > clock));
    await expect(guard.run(() => 'second probe')).rejects.toBeInstanceOf(BreakerOpenError);
    endProbe!();
    expect(await probe).toBe('ok');
    expect(await rebound.breakers.get('svc')).toMatchObject({ state: 'closed', trips: 0 });
    expect((await rebound.breakers.events({ name: 'svc', limit: 1 }))[0]).toMatchObject({ from: 'half_open', to: 'closed' });
  });

  it('ctx.breaker counts a guarded call still hanging when its job times out', async () => {
    url = freshStoreUrl(kind);
    const job = defineJob('sms', {
      timeoutMs: 50,
      retry: { maxAttempts: 1 },
      // A downstream that never answers, and a call that ignores the job's signal.
      handler: async (_p, ctx) => ctx.breaker('sms-gw').run(() => new Promise(() => {})),
    });
    rebound = await createRebound({ store: url, jobs: [job] });
    rebound.breakers.configure('sms-gw', { consecutiveFailures: 2 });
    await rebound.enqueueMany([0, 1].map(() => ({ type: 'sms', payload: {} })));
    const worker = rebound.work({ concurrency: 2, pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ state: 'dead', type: 'sms' })) === 2);
    await worker.stop();
    const view = await rebound.breakers.get('sms-gw');
    expect(view).toMatchObject({ state: 'open', window: { calls: 2, failures: 2 } });
    expect(view.lastError).toMatch(/^TimeoutError/);
  });

  /** A charge job behind the payments breaker (tripping after `failures` in a row) that fails until `service.up`. */
  const chargeBehindPayments = (failures: number) => {
    const service = { up: false };
    const chargeJob = defineJob('charge', {
      breaker: { name: 'payments', consecutiveFailures: failures, cooldownMs: 600_000 },
      retry: { maxAttempts: 1 },
      handler: async () => {
        if (!service.up) throw new Error('payment service down');
      },
    });
    return { service, chargeJob };
  };

  it("an operator's reset from a client without the job definitions (the CLI) still has the outage's dead jobs redriven", async () => {
    url = freshStoreUrl(kind);
    const { service, chargeJob } = chargeBehindPayments(2);
    rebound = await createRebound({ store: url, jobs: [chargeJob] });
    const doomed = await rebound.enqueueMany([0, 1].map(() => ({ type: 'charge', payload: {} })));
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ state: 'dead' })) === 2);
    expect((await rebound.breakers.get('payments')).state).toBe('open');
    service.up = true;
    const operator = await createRebound({ store: url });
    try {
      const view = await operator.breakers.reset('payments', { actor: 'cli' });
      expect(view).toMatchObject({ state: 'closed', redrivePending: { to: view.updatedAt } });
    } finally {
      await operator.close();
    }
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 2);
    await worker.stop();
    for (const d of doomed) {
      const history = await rebound.inspect(d.id);
      expect(history.history.find((h) => h.kind === 'redriven')?.data).toMatchObject({ actor: 'auto-redrive:breaker:payments' });
    }
    expect((await rebound.breakers.get('payments')).redrivePending).toBeNull();
  });

  it('a client that stops during an outage redrive stops it promptly and leaves the rest owed; the next process finishes it', async () => {
    url = freshStoreUrl(kind);
    const { service, chargeJob } = chargeBehindPayments(6);
    rebound = await createRebound({ store: url, jobs: [chargeJob] });
    await rebound.enqueueMany([0, 1, 2, 3, 4, 5].map(() => ({ type: 'charge', payload: {} })));
    const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ state: 'dead' })) === 6);
    await worker.stop();
    // One job a second: the whole redrive would take five seconds more.
    rebound.breakers.redrivePerSecond = 1;
    service.up = true;
    const redriven: string[] = [];
    rebound.events.on('job:redriven', (e) => redriven.push(...e.jobIds));
    await rebound.breakers.force('payments', 'closed');
    await waitFor(() => redriven.length >= 1);
    await rebound.close();
    expect(redriven.length).toBeLessThan(6);
    const next = await createRebound({ store: url, jobs: [chargeJob] });
    try {
      expect((await next.breakers.get('payments')).redrivePending).not.toBeNull();
      const w = next.work({ concurrency: 2, pollIntervalMs: 20 });
      await waitFor(async () => (await next.countJobs({ state: 'completed' })) === 6, 20_000);
      await w.stop();
      expect((await next.breakers.get('payments')).redrivePending).toBeNull();
    } finally {
      await next.close();
    }
  });

  it('refuses bad breaker options with a ValidationError naming the field', async () => {
    url = freshStoreUrl(kind);
    expect(() => defineJob('x', { handler: () => 1, breaker: { name: 'p', failureRatio: 2 } })).toThrow(/defineJob\("x"\)\.breaker\.failureRatio/);
    expect(() => defineJob('x', { handler: () => 1, breaker: 'bad name!' })).toThrow(/breaker\.name/);
    rebound = await createRebound({ store: url });
    await expect(rebound.breakers.force('p', 'sideways' as never)).rejects.toMatchObject({ code: 'validation', field: 'to' });
  });
});

describe('a breaker shared by job types', () => {
  let url: string;
  afterEach(async () => dropStore(url));
  const noop = async () => null;

  it('has one set of options: two types declaring one differently are refused, naming both; the same or none is fine', async () => {
    url = freshStoreUrl('sqlite');
    const counts = () => true;
    const refused = await createRebound({
      store: url,
      jobs: [
        defineJob('charge', { breaker: { name: 'payments', consecutiveFailures: 5 }, handler: noop }),
        defineJob('refund', { breaker: { name: 'payments', consecutiveFailures: 3 }, handler: noop }),
      ],
    }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toMatch(/^job types "charge" and "refund" declare breaker "payments" with different consecutiveFailures: /);
    expect((refused as Error).message).toContain('rebound.breakers.configure("payments", { consecutiveFailures })');

    const r = await createRebound({
      store: url,
      jobs: [
        defineJob('charge', { breaker: { name: 'payments', consecutiveFailures: 5, countsAsFailure: counts }, handler: noop }),
        defineJob('refund', { breaker: { name: 'payments', consecutiveFailures: 5, countsAsFailure: counts }, handler: noop }),
        defineJob('payout', { breaker: 'payments', handler: noop }),
      ],
    });
    try {
      expect(r.breakers.config('payments')).toMatchObject({ consecutiveFailures: 5 });
      // Defined later, a conflicting type is refused too, and the definitions stay as they were.
      const late = defineJob('capture', { breaker: { name: 'payments', countsAsFailure: () => false }, handler: noop });
      expect(() => r.define(late)).toThrow(/job types "charge" and "capture" declare breaker "payments" with different countsAsFailure/);
      expect([...r.definitions.keys()]).toEqual(['charge', 'refund', 'payout']);
      // Redefining a type replaces it: its own old declaration is not a conflict.
      r.define(defineJob('charge', { breaker: { name: 'payments', consecutiveFailures: 5 }, handler: noop }));
    } finally {
      await r.close();
    }
  });
});
