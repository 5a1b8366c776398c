/**
 * The API over the real capabilities, as `rebound start` wires them: breakers,
 * schedules, workflow signals, redaction, metrics, stats and the audit trail,
 * with every operator action recorded under the token's name.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, PermanentError } from '../../src/index.ts';
import { waitFor } from '../helpers/stores.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const jobs = [
  defineJob('pay', { redact: ['card'], breaker: 'payments', handler: async (p: { card: string; amount: number }) => ({ paid: p.amount }) }),
  defineJob('ok', { handler: async () => 'ok' }),
  defineWorkflow('approval', {
    run: async (ctx, input: { doc: string }) => {
      const decision = await ctx.waitFor<{ approved: boolean }>('decision', { timeoutMs: 60_000 });
      return { doc: input.doc, approved: decision.approved };
    },
  }),
];

describe('operator API on the real capabilities', () => {
  it('masks redacted payload paths (of jobs and schedules) for viewers and operators, and shows them to admins', async () => {
    h = await startHarness({ jobs, wire: true });
    const j = await h.rebound.enqueue('pay', { card: '4242 4242 4242 4242', amount: 12 });
    for (const role of ['viewer', 'operator'] as const) {
      const r = await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens[role] });
      expect(r.body.job).toMatchObject({ payload: { card: '[REDACTED]', amount: 12 }, masked: true });
    }
    expect((await h.call('GET', '/api/jobs?type=pay', { token: h.tokens.viewer })).body.jobs[0].payload.card).toBe('[REDACTED]');
    expect((await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens.admin })).body.job).toMatchObject({ payload: { card: '4242 4242 4242 4242' }, masked: false });
    // A schedule holds the payload of the jobs it enqueues: masked alike.
    await h.rebound.coordination.addSchedule('monthly-fee', { cron: '0 0 1 * *', type: 'pay', payload: { card: '4242 4242 4242 4242', amount: 5 } });
    for (const role of ['viewer', 'operator'] as const) {
      const r = await h.call('GET', '/api/schedules', { token: h.tokens[role] });
      expect(r.body.schedules[0]).toMatchObject({ name: 'monthly-fee', payload: { card: '[REDACTED]', amount: 5 } });
    }
    const paused = await h.call('POST', '/api/schedules/monthly-fee/pause', { token: h.tokens.operator });
    expect(paused.body.schedule.payload.card).toBe('[REDACTED]');
    expect((await h.call('GET', '/api/schedules', { token: h.tokens.admin })).body.schedules[0].payload.card).toBe('4242 4242 4242 4242');
  });

  it('shows viewers and operators none of the data of a job whose definition the server does not hold; admins see it as stored', async () => {
    h = await startHarness({ jobs: [], wire: true }); // `rebound start` without --jobs
    const card = '4111 1111 1111 1111';
    // The workers elsewhere hold the definition, and its redact paths.
    const charge = defineJob('charge', {
      redact: ['card'],
      retry: { maxAttempts: 1 },
      handler: async (p: { card: string; fail?: boolean }) => {
        if (p.fail) throw new PermanentError('card declined');
        return { charged: p.card };
      },
    });
    const app = await createRebound({ store: h.storeUrl, jobs: [charge] });
    try {
      const dead = await app.enqueue('charge', { card, fail: true });
      const done = await app.enqueue('charge', { card });
      const worker = app.work({ pollIntervalMs: 20 });
      await waitFor(async () => (await app.countJobs({ state: 'dead' })) === 1 && (await app.countJobs({ state: 'completed' })) === 1);
      await worker.stop();
      const detail = await h.call('GET', `/api/jobs/${dead.id}`, { token: h.tokens.viewer });
      expect(detail.body.job).toMatchObject({ payload: '[masked: definition not loaded]', lastError: { payload: '[masked: definition not loaded]' }, masked: true });
      expect(detail.body.attempts[0].error.payload).toBe('[masked: definition not loaded]');
      expect(detail.body.history.at(-1).data.error.payload).toBe('[masked: definition not loaded]');
      expect((await h.call('GET', `/api/jobs/${done.id}`, { token: h.tokens.viewer })).body.job).toMatchObject({ result: '[masked: definition not loaded]', masked: true });
      const fingerprint = detail.body.job.lastError.fingerprint;
      for (const role of ['viewer', 'operator'] as const) {
        for (const path of ['/api/jobs', `/api/jobs/${done.id}`, `/api/dlq?fingerprint=${fingerprint}`]) {
          expect(JSON.stringify((await h.call('GET', path, { token: h.tokens[role] })).body)).not.toContain('4111');
        }
      }
      const seen = await h.call('GET', `/api/jobs/${done.id}`, { token: h.tokens.admin });
      expect(seen.body.job).toMatchObject({ payload: { card }, result: { charged: card }, masked: false });
    } finally {
      await app.close();
    }
  });

  it("hides a workflow's step results and signal payloads from viewers when the server does not hold its definition", async () => {
    h = await startHarness({ jobs: [], wire: true }); // `rebound start` without --jobs
    const card = '4111 1111 1111 1111';
    const checkout = defineWorkflow('checkout', {
      redact: ['card'],
      run: async (ctx, input: { card: string }) => {
        const charged = await ctx.step('charge', () => ({ card: input.card }));
        const approval = await ctx.waitFor<{ note: string }>('approve');
        return { charged, approval };
      },
    });
    const app = await createRebound({ store: h.storeUrl, jobs: [checkout] });
    try {
      const { id } = await app.enqueue('checkout', { card });
      const worker = app.work({ pollIntervalMs: 20 });
      await waitFor(async () => (await app.workflow(id).catch(() => null))?.waiting === 'signal:approve');
      await app.signal(id, 'approve', { note: `card ${card} ok` });
      await waitFor(async () => (await app.getJob(id))?.state === 'completed');
      await worker.stop();
      const viewer = (await h.call('GET', `/api/jobs/${id}`, { token: h.tokens.viewer })).body;
      expect(JSON.stringify(viewer)).not.toContain('4111');
      expect(viewer.workflow.steps.find((s: { name: string }) => s.name === 'charge').result).toBe('[masked: definition not loaded]');
      expect(viewer.workflow.signals[0].payload).toBe('[masked: definition not loaded]');
      const admin = (await h.call('GET', `/api/jobs/${id}`, { token: h.tokens.admin })).body;
      expect(admin.workflow.signals[0].payload).toEqual({ note: `card ${card} ok` });
    } finally {
      await app.close();
    }
  });

  it('lists and forces breakers, pauses schedules, and records both in the audit trail as the token', async () => {
    h = await startHarness({ jobs, wire: true });
    await h.rebound.coordination.addSchedule('nightly', { cron: '0 3 * * *', type: 'ok' });
    expect((await h.call('GET', '/api/breakers', { token: h.tokens.viewer })).body.breakers).toEqual([expect.objectContaining({ name: 'payments', state: 'closed' })]);
    const opened = await h.call('POST', '/api/breakers/payments/open', { token: h.tokens.operator });
    expect(opened.body.breaker).toMatchObject({ name: 'payments', state: 'open', forced: 'open' });
    expect((await h.call('POST', '/api/breakers/payments/close', { token: h.tokens.operator })).body.breaker).toMatchObject({ forced: 'closed' });
    expect((await h.call('POST', '/api/breakers/payments/reset', { token: h.tokens.operator })).body.breaker).toMatchObject({ state: 'closed', forced: null });
    const schedules = await h.call('GET', '/api/schedules', { token: h.tokens.viewer });
    expect(schedules.body.schedules).toEqual([expect.objectContaining({ name: 'nightly', paused: false, nextFireAt: expect.any(Number) })]);
    expect((await h.call('POST', '/api/schedules/nightly/pause', { token: h.tokens.operator })).body.schedule).toMatchObject({ paused: true });
    expect((await h.call('POST', '/api/schedules/missing/pause', { token: h.tokens.operator })).status).toBe(404);
    const added = await h.call('POST', '/api/schedules', { token: h.tokens.operator, body: { name: 'hourly', cron: '0 * * * *', type: 'ok', payload: { n: 1 } } });
    expect(added).toMatchObject({ status: 201, body: { schedule: { name: 'hourly', cron: '0 * * * *', paused: false } } });
    expect((await h.call('POST', '/api/schedules', { token: h.tokens.operator, body: { name: 'hourly', cron: '30 * * * *', type: 'ok' } })).status).toBe(200);
    const bad = await h.call('POST', '/api/schedules', { token: h.tokens.operator, body: { name: 'broken', cron: 'not a cron', type: 'ok' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation', field: 'cron' });
    expect(bad.body.error.message).toMatch(/^cron: /);
    const misfire = await h.call('POST', '/api/schedules', { token: h.tokens.operator, body: { name: 'broken', cron: '0 * * * *', type: 'ok', misfire: 'later' } });
    expect(misfire.body.error).toMatchObject({ field: 'misfire', message: 'misfire: must be "skip", "once" or { "all": N } with N from 1 to 10000' });
    const extra = await h.call('POST', '/api/schedules', { token: h.tokens.operator, body: { name: 'broken', cron: '0 * * * *', type: 'ok', every: 5 } });
    expect(extra.body.error.field).toBe('every');
    expect((await h.call('DELETE', '/api/schedules/hourly', { token: h.tokens.operator })).body).toEqual({ removed: 'hourly' });
    expect((await h.call('DELETE', '/api/schedules/hourly', { token: h.tokens.operator })).status).toBe(404);
    const recent = await waitFor(async () => {
      const r = await h.call('GET', '/api/audit?limit=20', { token: h.tokens.viewer });
      return r.body.entries.some((e: { action: string }) => e.action === 'schedule.remove') ? r.body.entries : null;
    });
    const ops = recent.filter((e: { actor: string }) => e.actor === 'operator-token').map((e: { action: string; target: string }) => `${e.action} ${e.target}`);
    expect(ops).toEqual([
      'schedule.remove schedule:hourly',
      'schedule.update schedule:hourly',
      'schedule.add schedule:hourly',
      'schedule.pause schedule:nightly',
      'breaker.reset breaker:payments',
      'breaker.force_close breaker:payments',
      'breaker.force_open breaker:payments',
    ]);
    const operatorOnly = await h.call('GET', '/api/audit?kind=operator&limit=3', { token: h.tokens.viewer });
    expect(operatorOnly.body.entries.map((e: { action: string }) => e.action)).toEqual(['schedule.remove', 'schedule.update', 'schedule.add']);
    expect((await h.call('GET', '/api/audit?kind=nope')).body.error.field).toBe('kind');
    const verify = await h.call('GET', '/api/audit/verify', { token: h.tokens.viewer });
    expect(verify.body).toMatchObject({ ok: true });
    expect(verify.body.count).toBeGreaterThanOrEqual(4);
  });

  // The paging is the server's, over readAudit (which both stores pass in test/conformance): SQLite is enough here.
  it('finds operator actions behind more job submissions than one page of the audit trail', async () => {
    h = await startHarness({ jobs, wire: true });
    await h.call('POST', '/api/breakers/payments/open', { token: h.tokens.operator });
    await h.call('POST', '/api/breakers/payments/reset', { token: h.tokens.operator });
    // One at a time: concurrent enqueues may share one batch entry.
    for (let i = 0; i < 1100; i++) await h.rebound.enqueue('ok', { n: i });
    const r = await h.call('GET', '/api/audit?kind=operator&limit=5', { token: h.tokens.viewer });
    expect(r.body.entries.map((e: { actor: string; action: string }) => `${e.actor} ${e.action}`)).toEqual([
      'operator-token breaker.reset',
      'operator-token breaker.force_open',
    ]);
  });

  it('forces a breaker that no job uses yet, as its OpenAPI entry says: 404 is for an unknown action only', async () => {
    h = await startHarness({ jobs, wire: true });
    const opened = await h.call('POST', '/api/breakers/warehouse-api/open', { token: h.tokens.operator });
    expect(opened).toMatchObject({ status: 200, body: { breaker: { name: 'warehouse-api', state: 'open', forced: 'open' } } });
    expect((await h.call('POST', '/api/breakers/warehouse-api/explode', { token: h.tokens.operator })).status).toBe(404);
    const doc = (await h.call('GET', '/api/openapi.json', { token: null })).body;
    const forcing = doc.paths['/api/breakers/{name}/{action}'].post;
    expect(forcing.summary).toContain('any name may be forced');
    expect(forcing.responses['404'].description).toBe('no such action');
  });

  it('delivers a signal to a waiting workflow and shows its steps; metrics and stats come from the visibility capability', async () => {
    h = await startHarness({ jobs, wire: true });
    const worker = h.rebound.work({ pollIntervalMs: 20 });
    const run = await h.call('POST', '/api/jobs', { token: h.tokens.operator, body: { type: 'approval', payload: { doc: 'q3' } } });
    await waitFor(async () => (await h.call('GET', `/api/jobs/${run.body.id}`)).body.workflow?.waiting === 'signal:decision');
    const sent = await h.call('POST', `/api/jobs/${run.body.id}/signal/decision`, { token: h.tokens.operator, body: { payload: { approved: true } } });
    expect(sent).toMatchObject({ status: 200, body: { delivered: true } });
    await waitFor(async () => (await h.rebound.getJob(run.body.id))?.state === 'completed');
    const detail = await h.call('GET', `/api/jobs/${run.body.id}`, { token: h.tokens.viewer });
    expect(detail.body.job.result).toEqual({ doc: 'q3', approved: true });
    expect(detail.body.workflow).toMatchObject({ status: 'completed' });
    await worker.stop();
    await h.rebound.enqueue('ok', {}, { runAt: Date.now() - 4000 });
    const queues = (await h.call('GET', '/api/queues', { token: h.tokens.viewer })).body.queues;
    const q = queues.find((x: { queue: string }) => x.queue === 'default');
    expect(q).toMatchObject({ depth: 1, maxDepth: null });
    expect(q.lagMs).toBeGreaterThanOrEqual(4000);
    const metrics = await h.call('GET', '/metrics', { token: h.tokens.viewer });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^rebound_/m);
    const stats = await h.call('GET', '/api/stats', { token: h.tokens.viewer });
    expect(stats.body.rollup.totals).toBeDefined();
    expect((await h.call('GET', '/api/whoami')).body.capabilities).toMatchObject({ breakers: true, schedules: true, audit: true, metrics: true, signals: true });
  });
});
