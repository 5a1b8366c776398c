/**
 * Leader election with renewals that do not come back in time, on both stores:
 * the leader's stop callbacks run when its trust ends, before another process
 * leads, even while a renewal hangs; and a renewal that returns after that
 * does not revive the term. The election does not wait for the callbacks: a
 * slow start does not hold up renewals.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.ts';
import { Elector } from '../../src/coordination/leader.ts';
import type { Logger } from '../../src/define.ts';
import type { CoordinationStore } from '../../src/store/coordination.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';

/** The store, with each renewal's answer held until `open()`: held before the renewal reaches the store, or after it succeeded there. */
function holdRenewals(store: CoordinationStore, held: 'before' | 'after') {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const slow: CoordinationStore = Object.create(store);
  slow.renewLease = async (p) => {
    if (held === 'before') await gate;
    const renewed = await store.renewLease(p);
    await gate;
    return renewed;
  };
  return { store: slow, open };
}

describe.each(storeKinds)('leader election on %s', (kind) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup() {
    const url = freshStoreUrl(kind);
    const store = await openStore(url);
    await store.migrate();
    cleanup.push(() => dropStore(url), () => store.close());
    const seen: string[] = [];
    const elector = (s: CoordinationStore, holder: string, opts: { leaseMs?: number; now?: () => number } = {}) => {
      const e = new Elector(s, { holder, leaseMs: 300, ...opts });
      e.onLeadership((l) => void seen.push(`${holder}+${l.token}`), (l, why) => void seen.push(`${holder}-${l.token} ${why}`));
      cleanup.push(() => e.stop());
      return e;
    };
    return { store: store.coordination, seen, elector };
  }

  it("a leader whose renewal hangs stops its leader-only code before another process leads", async () => {
    const { store, seen, elector } = await setup();
    const hang = holdRenewals(store, 'before');
    const a = elector(hang.store, 'a');
    const b = elector(store, 'b');
    expect((await a.runOnce())?.token).toBe(1);
    const renewal = a.runOnce(); // hangs until opened
    await waitFor(async () => (await b.runOnce()) !== null, 20_000, 10);
    expect(seen).toEqual(['a+1', 'a-1 lease not renewed in time', 'b+2']);
    // The hung renewal comes back (refused: b holds the lease) and changes nothing.
    hang.open();
    expect(await renewal).toBeNull();
    expect(a.leadership).toBeNull();
    expect(seen).toEqual(['a+1', 'a-1 lease not renewed in time', 'b+2']);
  });

  it('a renewal that succeeds only after the leader stepped down does not revive its term; the lease is given up', async () => {
    const { store, seen, elector } = await setup();
    const late = holdRenewals(store, 'after');
    let pausedMs = 0;
    const a = elector(late.store, 'a', { leaseMs: 1000, now: () => Date.now() + pausedMs });
    expect((await a.runOnce())?.token).toBe(1); // trusted for 800 ms
    // After a 750 ms pause a renews: the store extends the lease (trust until 1550 ms), but the answer is late.
    pausedMs = 750;
    const renewal = a.runOnce();
    await waitFor(() => seen.length === 2, 5_000, 5);
    expect(seen).toEqual(['a+1', 'a-1 lease not renewed in time']);
    late.open();
    expect(await renewal).toBeNull();
    expect(a.leadership).toBeNull();
    // The stop callbacks ran, so leading again takes a new term, won at once since the lease was given up.
    expect((await a.runOnce())?.token).toBe(2);
    expect(seen).toEqual(['a+1', 'a-1 lease not renewed in time', 'a+2']);
  });

  it('a start callback that has not finished does not hold up renewals; the stop comes at once, the next start after both settle', async () => {
    const { store } = await setup();
    let clock = Date.parse('2026-05-01T00:00:00Z');
    const a = new Elector(store, { holder: 'a', leaseMs: 1000, now: () => clock });
    cleanup.push(() => a.stop());
    const seen: string[] = [];
    let finishStart!: () => void;
    const startRunning = new Promise<void>((resolve) => (finishStart = resolve));
    let started!: () => void;
    const startCalled = new Promise<void>((resolve) => (started = resolve));
    a.onLeadership(
      async (l) => {
        seen.push(`+${l.token}`);
        started();
        await startRunning; // warming a cache, say, for longer than the lease
        seen.push(`+${l.token} done`);
      },
      (l, why) => void seen.push(`-${l.token} ${why}`),
    );
    const won = a.runOnce().then((l) => l?.token ?? null);
    await startCalled;
    // Once start is called nothing else is awaited: the round has returned by the next turn of the event loop.
    expect(await Promise.race([won, new Promise((r) => setImmediate(() => r('still waiting for start')))])).toBe(1);
    clock += 300;
    expect((await a.runOnce())?.token).toBe(1); // renewed while start runs
    // The term ends while start still runs: stop is called at once, not after start.
    clock += 900;
    expect(await a.runOnce()).toBeNull();
    expect(seen).toEqual(['+1', '-1 lease not renewed in time']);
    // A new term is won, but its start waits for the last term's start to finish.
    clock += 1000;
    expect((await a.runOnce())?.token).toBe(2);
    expect(seen).toEqual(['+1', '-1 lease not renewed in time']);
    finishStart();
    await waitFor(() => seen.length === 5, 5_000, 5);
    expect(seen).toEqual(['+1', '-1 lease not renewed in time', '+1 done', '+2', '+2 done']);
    await a.stop();
    expect(seen.at(-1)).toBe('-2 stopped');
  });

  it('logs a stop as the normal end of a term (info), and a term lost otherwise as a warning', async () => {
    const { store } = await setup();
    const logged: [string, string, unknown][] = [];
    const logger: Logger = {
      debug: () => {},
      info: (o, m) => void logged.push(['info', String(m), (o as { reason?: unknown }).reason]),
      warn: (o, m) => void logged.push(['warn', String(m), (o as { reason?: unknown }).reason]),
      error: () => {},
      child: () => logger,
    };
    const a = new Elector(store, { holder: 'a', leaseMs: 300, logger });
    expect(await a.runOnce()).not.toBeNull();
    await a.stepDown('lease not renewed in time');
    const b = new Elector(store, { lease: 'other', holder: 'b', leaseMs: 300, logger });
    expect(await b.runOnce()).not.toBeNull();
    await b.stop();
    expect(logged.filter(([, m]) => m === 'stepped down')).toEqual([
      ['warn', 'stepped down', 'lease not renewed in time'],
      ['info', 'stepped down', 'stopped'],
    ]);
  });
});
