/**
 * A dead letter queue that is watched and heals, on both stores: alert rules
 * call a real webhook on 127.0.0.1 and fire once per episode; redrive policies
 * bring back the matching dead jobs, recorded with the policy as the actor;
 * processes that each run the watcher alert and redrive once between them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, type DlqAlert, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

/** A webhook on 127.0.0.1; `status` answers each request (a 503 is a webhook that is down: nothing is received). */
async function webhookServer(status: () => number = () => 204) {
  const received: DlqAlert[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests++;
      const code = status();
      if (code < 300) received.push(JSON.parse(body));
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/dlq`;
  return { url, received, requests: () => requests, close: () => new Promise<void>((r) => server.close(() => r())) };
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

  it('a growth rule fires on dead jobs within its window; a webhook that is down gets the same alert at the next checks, announced once', async () => {
    url = freshStoreUrl(kind);
    let down = 2;
    hook = await webhookServer(() => (down-- > 0 ? 503 : 204));
    clock = Date.now();
    rebound = await createRebound({ store: url, jobs: [fail], now: () => clock });
    const alerts: DlqAlert[] = [];
    rebound.events.on('dlq:alert', (a) => alerts.push(a));
    const watcher = rebound.watchDlq({ rules: [{ name: 'burst', growth: { count: 2, withinMs: 60_000 }, webhook: hook.url }] });
    await deadJobs(['gamma 1', 'gamma 2']);
    const first = await watcher.runOnce();
    expect(first.alerts).toMatchObject([{ rule: 'burst', condition: 'growth', value: 2 }]);
    // The webhook is down: the next checks deliver the same firing again, without a new event or error line.
    clock += 1000;
    expect((await watcher.runOnce()).alerts).toEqual([]);
    expect(hook.received).toEqual([]);
    clock += 1000;
    expect((await watcher.runOnce()).alerts).toEqual([]);
    expect(hook.received).toEqual([expect.objectContaining({ rule: 'burst', at: first.alerts[0].at })]);
    clock += 1000;
    await watcher.runOnce();
    expect([hook.requests(), hook.received.length, alerts.length]).toEqual([3, 1, 1]);
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

  it('a holder that loses its lease mid-redrive stops after its current job, and the next holder redrives the rest, each job once', async () => {
    url = freshStoreUrl(kind);
    let now = Date.now();
    rebound = await createRebound({ store: url, jobs: [fail], now: () => now });
    await deadJobs(['iota 1', 'iota 2', 'iota 3']);
    const other = await createRebound({ store: url, jobs: [fail], now: () => now });
    try {
      const byHolder = new Map<Rebound, string[]>([[rebound, []], [other, []]]);
      for (const [r, ids] of byHolder) r.events.on('job:redriven', (e) => ids.push(...e.jobIds));
      // One job every 2 s; checked only when the test asks (the interval is a minute).
      const opts = { intervalMs: 60_000, policies: [{ name: 'slow', everyMs: 60_000, perSecond: 0.5 }] };
      const first = rebound.watchDlq(opts);
      const second = other.watchDlq(opts);
      const pass = first.runOnce();
      await waitFor(() => byHolder.get(rebound)!.length === 1);
      // The holder's process pauses past its lease (a GC pause, a stopped VM), another takes the lease over, and the
      // holder's next election round finds it lost.
      now += 3_600_000;
      expect(await second['elector'].runOnce()).not.toBeNull();
      expect(await first['elector'].runOnce()).toBeNull();
      expect((await pass).redriven.slow).toHaveLength(1);
      expect((await second.runOnce()).redriven.slow).toHaveLength(2);
      expect(byHolder.get(other)).toHaveLength(2);
      const all = [...byHolder.get(rebound)!, ...byHolder.get(other)!];
      expect(new Set(all).size).toBe(3);
      expect(await rebound.countJobs({ state: 'dead' })).toBe(0);
    } finally {
      await other.close();
    }
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

  it('processes that each watch the DLQ alert and redrive once between them: the lease holder does, and another takes over when it stops', async () => {
    url = freshStoreUrl(kind);
    hook = await webhookServer();
    rebound = await createRebound({ store: url, jobs: [fail] });
    await deadJobs(['theta 1', 'theta 2', 'theta 3', 'theta 4', 'theta 5', 'theta 6']);
    const others = [await createRebound({ store: url, jobs: [fail] }), await createRebound({ store: url, jobs: [fail] })];
    const opts = { rules: [{ name: 'dlq-size', count: 3, webhook: hook.url }], policies: [{ name: 'all', everyMs: 60_000, maxPerRun: 2, perSecond: 100 }] };
    const alerts: DlqAlert[] = [];
    const watchers = [rebound, ...others].map((r) => {
      r.events.on('dlq:alert', (a) => alerts.push(a));
      return r.watchDlq(opts);
    });
    try {
      const passes = await Promise.all(watchers.map((w) => w.runOnce()));
      expect(passes.map((p) => p.leading).filter(Boolean)).toHaveLength(1);
      expect([alerts.length, hook.received.length, passes.flatMap((p) => p.redriven.all ?? []).length]).toEqual([1, 1, 2]);
      expect(await rebound.countJobs({ state: 'dead' })).toBe(4);
      // The holder stops (a deploy, a crash's lease lapsing): one of the others holds the lease and checks from then on.
      const holder = passes.findIndex((p) => p.leading);
      await watchers[holder].stop();
      const rest = watchers.filter((_, i) => i !== holder);
      const next = await Promise.all(rest.map((w) => w.runOnce()));
      expect(next.map((p) => p.leading).filter(Boolean)).toHaveLength(1);
      expect([alerts.length, hook.received.length]).toEqual([2, 2]); // the new holder fires the rule that holds, once
    } finally {
      for (const r of others) await r.close();
    }
    expect(() => rebound.watchDlq({ rules: [{ name: 'other', count: 1 }] })).toThrow(expect.objectContaining({ field: 'dlq.lease' }));
    expect(rebound.watchDlq({ rules: [{ name: 'other', count: 1 }], lease: 'leader:dlq-other' }).lease).toBe('leader:dlq-other');
  });
});
