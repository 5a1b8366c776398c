/**
 * A dead letter queue that is watched and heals, on both stores: alert rules
 * call a real webhook on 127.0.0.1 and fire once per episode; redrive policies
 * bring back the matching dead jobs, recorded with the policy as the actor.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type DlqAlert, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

async function webhookServer() {
  const received: DlqAlert[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/dlq`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const fail = defineJob('fail', {
  retry: { maxAttempts: 1 },
  handler: async (p: { msg: string }) => {
    throw new Error(p.msg);
  },
});

describe.each(storeKinds)('DLQ watcher on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  let hook: Awaited<ReturnType<typeof webhookServer>> | undefined;
  let clock = Date.now();
  afterEach(async () => {
    await rebound?.close();
    await hook?.close();
    hook = undefined;
    await dropStore(url);
  });

  const deadJobs = async (msgs: string[]) => {
    const ids = (await rebound.enqueueMany(msgs.map((msg) => ({ type: 'fail', payload: { msg } })))).map((r) => r.id);
    const w = rebound.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await rebound.countJobs({ state: 'dead' })) >= msgs.length);
    await w.stop();
    return ids;
  };

  it('alert rules call the webhook once per episode, and again after the DLQ recovered and broke again', async () => {
    url = freshStoreUrl(kind);
    hook = await webhookServer();
    clock = Date.now();
    rebound = await createRebound({ store: url, jobs: [fail], now: () => clock });
    const alerts: DlqAlert[] = [];
    rebound.events.on('dlq:alert', (a) => alerts.push(a));
    const watcher = rebound.watchDlq({
      intervalMs: 60_000,
      rules: [
        { name: 'too-many', count: 3, webhook: hook.url },
        { name: 'stale', oldestAgeMs: 3600_000, webhook: hook.url },
      ],
    });
    expect((await watcher.runOnce()).alerts).toEqual([]);
    await deadJobs(['alpha 1', 'alpha 2', 'alpha 3']);
    const first = await watcher.runOnce();
    expect(first.alerts).toEqual([expect.objectContaining({ rule: 'too-many', condition: 'count', value: 3, threshold: 3 })]);
    expect(hook.received).toEqual([expect.objectContaining({ source: 'rebound', kind: 'dlq_alert', rule: 'too-many', value: 3, message: '3 dead jobs (alert at 3)' })]);
    expect((await watcher.runOnce()).alerts).toEqual([]); // still true: not sent again
    clock += 3600_000;
    const later = await watcher.runOnce();
    expect(later.alerts.map((a) => a.rule).sort()).toEqual(['stale', 'too-many']); // repeated after repeatMs, and the age rule
    await rebound.purge({ all: true });
    expect((await watcher.runOnce()).alerts).toEqual([]);
    await deadJobs(['beta 1', 'beta 2', 'beta 3']);
    expect((await watcher.runOnce()).alerts.map((a) => a.rule)).toEqual(['too-many']);
    expect(hook.received.map((a) => a.rule)).toEqual(['too-many', 'too-many', 'stale', 'too-many']);
    expect(alerts).toHaveLength(4);
  });

  it('a growth rule fires on dead jobs within its window; an unreachable webhook is retried at the next check', async () => {
    url = freshStoreUrl(kind);
    clock = Date.now();
    rebound = await createRebound({ store: url, jobs: [fail], now: () => clock });
    const watcher = rebound.watchDlq({ rules: [{ name: 'burst', growth: { count: 2, withinMs: 60_000 }, webhook: 'http://127.0.0.1:9/unreachable' }] });
    await deadJobs(['gamma 1', 'gamma 2']);
    expect((await watcher.runOnce()).alerts).toMatchObject([{ rule: 'burst', condition: 'growth', value: 2 }]);
    // The webhook failed, so the alert is not considered delivered.
    expect((await watcher.runOnce()).alerts).toHaveLength(1);
    clock += 120_000;
    expect((await watcher.runOnce()).alerts).toEqual([]);
    expect(() => rebound.watchDlq({ rules: [{ name: 'x' }] })).toThrow(/give count, growth or oldestAgeMs/);
    expect(() => rebound.watchDlq({ rules: [{ name: 'x', count: 1, webhook: 'ftp://nope' }] })).toThrow(/webhook/);
  });

  it('a redrive policy brings back the dead jobs of one fingerprint, bounded per run, recording itself as the actor', async () => {
    url = freshStoreUrl(kind);
    clock = Date.now();
    rebound = await createRebound({ store: url, jobs: [fail], now: () => clock });
    const ids = await deadJobs(['delta 1', 'delta 2', 'delta 3', 'epsilon']);
    const fp = (await rebound.getJob(ids[0]))!.lastError!.fingerprint;
    expect((await rebound.getJob(ids[3]))!.lastError!.fingerprint).not.toBe(fp);
    const watcher = rebound.watchDlq({ policies: [{ name: 'delta-fix', fingerprint: fp, everyMs: 60_000, maxPerRun: 2, perSecond: 100 }] });
    const run1 = await watcher.runOnce();
    expect(run1.redriven['delta-fix']).toHaveLength(2);
    expect((await watcher.runOnce()).redriven).toEqual({}); // not due yet
    clock += 60_000;
    const run2 = await watcher.runOnce();
    expect(run2.redriven['delta-fix']).toHaveLength(1);
    const all = [...run1.redriven['delta-fix'], ...run2.redriven['delta-fix']].sort();
    expect(all).toEqual(ids.slice(0, 3).sort());
    const { history } = await rebound.inspect(ids[1]);
    expect(history.find((h) => h.kind === 'redriven')?.data).toMatchObject({ actor: 'auto-redrive:policy:delta-fix' });
    expect((await rebound.getJob(ids[3]))?.state).toBe('dead');
  });

  it('closing stops a redrive under way after its current batch, leaving the rest dead for the next run', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [fail] });
    await deadJobs(['eta 1', 'eta 2', 'eta 3']);
    const redriven: string[] = [];
    rebound.events.on('job:redriven', (e) => redriven.push(...e.jobIds));
    // One job every 2 s: the whole run would hold close() for 4 s.
    rebound.watchDlq({ intervalMs: 10, policies: [{ name: 'slow', everyMs: 60_000, perSecond: 0.5 }] });
    await waitFor(() => redriven.length === 1);
    await rebound.close();
    expect(redriven).toHaveLength(1);
    rebound = await createRebound({ store: url, jobs: [fail] });
    expect(await rebound.countJobs({ type: 'fail', state: 'dead' })).toBe(2);
  });

  it('a redrive rate below one a second is kept (0.5: one job every 2 s); a bad policy is refused naming its field', async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [fail] });
    await deadJobs(['zeta 1', 'zeta 2', 'zeta 3']);
    expect(() => rebound.watchDlq({ policies: [{ name: 'p', everyMs: 1000, maxPerRun: -1 }] })).toThrow(expect.objectContaining({ field: 'dlq.policies[0].maxPerRun' }));
    expect(() => rebound.watchDlq({ policies: [{ name: 'p', everyMs: 1000, minDeadMs: -5 }] })).toThrow(expect.objectContaining({ field: 'dlq.policies[0].minDeadMs' }));
    const at: number[] = [];
    rebound.events.on('job:redriven', () => at.push(Date.now()));
    const watcher = rebound.watchDlq({ policies: [{ name: 'slow', everyMs: 60_000, perSecond: 0.5 }] });
    const run = await watcher.runOnce();
    expect(run.redriven.slow).toHaveLength(3);
    expect(at).toHaveLength(3);
    // Timers may fire a millisecond or so early; the gaps are the policy's pace, not a performance figure.
    for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(1_950);
  });
});
