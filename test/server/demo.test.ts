/**
 * `rebound start --demo` as a real process, with short outages: the payments
 * breaker opens and closes again, captures that died in the outage come back
 * on their own and complete, order workflows finish, and poison invoices stay
 * in the dead letter queue, and a worker process that crashes is restarted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exited, startCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/stores.ts';

describe('the demo scenario', () => {
  let child: ReturnType<typeof startCli> | null = null;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
  });

  it('shows an outage heal itself (breaker opens and closes, dead captures are redriven and complete), poison stays dead, and a crashed worker process is restarted', async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rebound-demo-')), 'demo.db')}`;
    child = startCli(['--store', store, 'start', '--demo', '--port', '0'], { REBOUND_DEMO_UP_MS: '3000', REBOUND_DEMO_DOWN_MS: '5000', REBOUND_DEMO_CRASH_EVERY: '4' });
    const base = await waitFor(() => /Rebound dashboard: (http:\/\/\S+)\//.exec(child!.output())?.[1], 30_000);
    const get = async (path: string) => (await fetch(`${base}${path}`)).json() as Promise<any>;
    const breaker = async () => (await get('/api/breakers')).breakers.find((b: { name: string }) => b.name === 'payments');

    await waitFor(async () => (await breaker())?.state === 'open', 30_000, 200);
    const deadCaptures = await waitFor(async () => {
      const { jobs } = await get('/api/jobs?type=payment.capture&state=dead&limit=50');
      return jobs.length ? jobs.map((j: { id: string }) => j.id) : null;
    }, 30_000, 200);
    await waitFor(async () => (await breaker())?.state === 'closed', 40_000, 200);

    const healed = await waitFor(async () => {
      for (const id of deadCaptures) {
        const d = await get(`/api/jobs/${id}`);
        if (d.job.state === 'completed') return d;
      }
      return null;
    }, 40_000, 250);
    expect(healed.history).toContainEqual(expect.objectContaining({ kind: 'redriven', data: { actor: 'auto-redrive:breaker:payments' } }));

    const orders = await get('/api/jobs?type=order.checkout&state=completed&limit=1');
    expect(orders.jobs[0].result).toMatchObject({ status: 'confirmed' });
    const detail = await get(`/api/jobs/${orders.jobs[0].id}`);
    expect(detail.workflow.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['reserve-stock:completed', 'charge:completed', 'confirm:completed']);

    const poison = await waitFor(async () => (await get('/api/dlq?type=invoice.parse')).groups[0], 30_000, 250);
    expect(poison).toMatchObject({ reasons: ['permanent'], sampleError: expect.objectContaining({ code: 'bad_invoice' }) });

    // A report crashed its worker process: the supervisor restarted it, and the report ended as poison.
    const restarted = await waitFor(async () => (await get('/api/workers')).processes.find((p: { restarts: number }) => p.restarts > 0), 40_000, 250);
    expect(restarted.state).toMatch(/starting|running|restarting/);
    const crashed = await waitFor(async () => (await get('/api/dlq?type=report.render')).groups[0], 40_000, 250);
    expect(crashed.reasons).toEqual(['poison']);
  });
});
