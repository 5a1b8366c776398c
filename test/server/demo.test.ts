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

  it('shows an outage heal itself (breaker opens and closes, dead captures are redriven and complete), poison stays dead, and a crashed worker process is restarted', { timeout: 180_000 }, async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'rebound-demo-')), 'demo.db')}`;
    // A 4 s outage every 16 s: the breaker opens within it, probes once it is over, and closes.
    // A report kills its worker process every 15 s: fewer than the supervisor's crash loop (more than 5 in 60 s),
    // which slows restarts to 30 s. With a crash every 4 s a slow run (a loaded CI machine) met the crash loop
    // before the breaker could close, and no process was left to run its probe.
    child = startCli(['--store', store, 'start', '--demo', '--port', '0'], { REBOUND_DEMO_UP_MS: '12000', REBOUND_DEMO_DOWN_MS: '4000', REBOUND_DEMO_CRASH_EVERY: '15' });
    const base = await waitFor(() => /Rebound dashboard: (http:\/\/\S+)\//.exec(child!.output())?.[1], 30_000);
    // Under the address, what to watch and how to stop: the demo's logs are silent. The outage figures are the ones in force.
    const guide = await waitFor(() => /^demo: .*\n(?:.*\n)*?.*Ctrl-C stops the demo$/m.exec(child!.output())?.[0]);
    expect(guide).toMatch(/the payment service is down 4 s in every 16 s/);
    expect(guide).not.toMatch(/emptied at each demo start/); // its own --store is kept
    const get = async (path: string) => (await fetch(`${base}${path}`)).json() as Promise<any>;
    const breaker = async () => (await get('/api/breakers')).breakers.find((b: { name: string }) => b.name === 'payments');
    // Each wait names what it waits for, so a failure says which part of the story did not happen.
    const until = <T>(what: string, check: () => Promise<T>) =>
      waitFor(check, 60_000, 250).catch((err) => Promise.reject(new Error(`${what}: ${(err as Error).message}`)));

    await until('the breaker opens', async () => (await breaker())?.state === 'open');
    // Captures that run out of attempts in an outage are dead; once the breaker closes they come back and complete.
    const seenDead = new Set<string>();
    const collectDead = async () => {
      for (const j of (await get('/api/jobs?type=payment.capture&state=dead&limit=100')).jobs) seenDead.add(j.id);
      return seenDead.size > 0;
    };
    await until('captures die in the outage', collectDead);
    await until('the breaker closes', async () => (await breaker())?.state === 'closed');
    const healed = await until('a dead capture is redriven and completes', async () => {
      await collectDead();
      for (const id of seenDead) {
        const d = await get(`/api/jobs/${id}`);
        if (d.job.state === 'completed') return d;
      }
      return null;
    });
    expect(healed.history).toContainEqual(expect.objectContaining({ kind: 'redriven', data: { actor: 'auto-redrive:breaker:payments' } }));

    const orders = await get('/api/jobs?type=order.checkout&state=completed&limit=1');
    expect(orders.jobs[0].result).toMatchObject({ status: 'confirmed' });
    const detail = await get(`/api/jobs/${orders.jobs[0].id}`);
    expect(detail.workflow.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['reserve-stock:completed', 'charge:completed', 'confirm:completed']);

    const poison = await until('a poison invoice is dead', async () => (await get('/api/dlq?type=invoice.parse')).groups[0]);
    expect(poison).toMatchObject({ reasons: ['permanent'], sampleError: expect.objectContaining({ code: 'bad_invoice' }) });

    // A report crashed its worker process: the supervisor restarted it, and the report ended as poison.
    const restarted = await until('a crashed worker process is restarted', async () => (await get('/api/workers')).processes.find((p: { restarts: number }) => p.restarts > 0));
    expect(restarted.state).toMatch(/starting|running|restarting/);
    const crashed = await until('the crashing report is poison', async () => (await get('/api/dlq?type=report.render')).groups[0]);
    expect(crashed.reasons).toEqual(['poison']);
  });
});
