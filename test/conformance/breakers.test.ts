/**
 * Breaker store conformance: every store applies the breaker state machine
 * under a lock, so concurrent processes never lose an outcome or hand out
 * more half-open probes than allowed, and every state change is recorded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { admit, force, recordOutcome, resolveConfig, takeRedrive } from '../../src/policies/breaker.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = 1_700_000_000_000;

describe.each(storeKinds)('breaker store conformance: %s', (kind) => {
  let url: string;
  const stores: Store[] = [];
  const open = async () => {
    const s = await openStore(url);
    stores.push(s);
    await s.migrate();
    return s;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await dropStore(url);
  });

  it('an unknown breaker reads as absent, is created closed on first update, and is listed', async () => {
    url = freshStoreUrl(kind);
    const s = await open();
    expect(await s.breakers.get('payments')).toBeNull();
    const cfg = resolveConfig();
    const out = await s.breakers.update('payments', T0, (r) => recordOutcome(r, cfg, T0, { ok: true }), 'breaker');
    expect(out.record).toMatchObject({ name: 'payments', state: 'closed', forced: null });
    expect(out.event).toBeNull();
    expect((await s.breakers.list()).map((b) => b.name)).toEqual(['payments']);
  });

  it('concurrent outcomes from two connections are all counted, and the trip is recorded once', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    const cfg = resolveConfig({ consecutiveFailures: 1000, minCalls: 30, failureRatio: 0.5, windowMs: 60_000 });
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? a : b).breakers.update('svc', T0 + i, (r) => recordOutcome(r, cfg, T0 + i, { ok: false, error: `boom ${i}` }), 'breaker'),
      ),
    );
    const rec = await a.breakers.get('svc');
    expect(rec).toMatchObject({ state: 'open', trips: 1 });
    const counted = rec!.window.reduce((n, w) => n + w.fail, 0);
    expect(counted).toBe(30);
    const events = await b.breakers.listEvents({ name: 'svc' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ name: 'svc', from: 'closed', to: 'open', actor: 'breaker' });
    expect(events[0].reason).toContain('30 of 30 calls failed');
  });

  it('hands out no more half-open probes than allowed, across connections', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    const cfg = resolveConfig({ consecutiveFailures: 1, cooldownMs: 1000, halfOpenProbes: 2 });
    await a.breakers.update('svc', T0, (r) => recordOutcome(r, cfg, T0, { ok: false }), 'breaker');
    const later = T0 + 1000;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).breakers.update('svc', later, (r) => admit(r, cfg, later, `p${i}`), 'breaker')),
    );
    expect(results.filter((r) => r.result.allowed)).toHaveLength(2);
    expect(results.filter((r) => r.result.probe)).toHaveLength(2);
    const rec = await a.breakers.get('svc');
    expect(rec?.state).toBe('half_open');
    const kinds = (await a.breakers.listEvents({ name: 'svc' })).map((e) => `${e.from}>${e.to}`);
    expect(kinds).toEqual(['open>half_open', 'closed>open']);
  });

  it('records forced changes with the actor, newest first', async () => {
    url = freshStoreUrl(kind);
    const s = await open();
    const cfg = resolveConfig();
    await s.breakers.update('svc', T0, (r) => force(r, cfg, T0, 'open'), 'ops-alice');
    await s.breakers.update('svc', T0 + 1, (r) => force(r, cfg, T0 + 1, 'reset'), 'cli');
    const events = await s.breakers.listEvents({});
    expect(events.map((e) => [e.to, e.actor])).toEqual([
      ['closed', 'cli'],
      ['open', 'ops-alice'],
    ]);
    expect(await s.breakers.get('svc')).toMatchObject({ state: 'closed', forced: null, lastOutage: { from: T0, to: T0 + 1 } });
  });

  it('the redrive an outage owes is taken by exactly one of the connections asking', async () => {
    url = freshStoreUrl(kind);
    const a = await open();
    const b = await open();
    const cfg = resolveConfig();
    await a.breakers.update('svc', T0, (r) => force(r, cfg, T0, 'open'), 'ops');
    await a.breakers.update('svc', T0 + 1, (r) => force(r, cfg, T0 + 1, 'reset'), 'cli');
    expect((await b.breakers.get('svc'))?.redrivePending).toEqual({ from: T0, to: T0 + 1 });
    const taken = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).breakers.update('svc', T0 + 2, takeRedrive, 'breaker')));
    expect(taken.map((t) => t.result).filter(Boolean)).toEqual([{ from: T0, to: T0 + 1 }]);
    expect((await a.breakers.get('svc'))?.redrivePending).toBeNull();
  });
});
