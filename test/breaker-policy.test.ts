/**
 * The breaker state machine as pure functions, driven by an explicit clock:
 * trips by ratio (with a minimum of calls) or by consecutive failures, a
 * cool-down that doubles while the service stays down, bounded probes.
 */
import { describe, expect, it } from 'vitest';
import { admit, applyInOrder, blocksClaims, force, freshBreaker, recordOutcome, resolveConfig, takeRedrive, type BreakerRecord } from '../src/policies/breaker.ts';

const T0 = 1_700_000_000_000;

function apply(rec: BreakerRecord, step: { next: BreakerRecord | null }) {
  return step.next ?? rec;
}

describe('breaker state machine', () => {
  it('trips on the failure ratio only once the minimum number of calls is reached', () => {
    const cfg = resolveConfig({ failureRatio: 0.5, minCalls: 6, consecutiveFailures: 100, windowMs: 10_000 });
    let r = freshBreaker('b', T0);
    for (const ok of [true, false, true, false, false]) r = apply(r, recordOutcome(r, cfg, T0, { ok }));
    expect(r.state).toBe('closed'); // 3 of 5 failed, but fewer than 6 calls
    const s = recordOutcome(r, cfg, T0 + 1, { ok: true });
    expect(s.next?.state).toBe('closed'); // 3 of 6: exactly the ratio is reached only by a failure
    r = apply(r, s);
    const trip = recordOutcome(r, cfg, T0 + 2, { ok: false, error: 'boom' });
    expect(trip.transition).toEqual({ from: 'closed', to: 'open', reason: '4 of 7 calls failed in 10000 ms; last: boom' });
  });

  it('forgets calls older than the window', () => {
    const cfg = resolveConfig({ failureRatio: 0.5, minCalls: 4, consecutiveFailures: 100, windowMs: 10_000 });
    let r = freshBreaker('b', T0);
    for (let i = 0; i < 3; i++) r = apply(r, recordOutcome(r, cfg, T0, { ok: false }));
    r = apply(r, recordOutcome(r, cfg, T0 + 20_000, { ok: false }));
    expect(r.state).toBe('closed');
  });

  it('doubles the cool-down while probes keep failing, up to the maximum, and closes after enough successful probes', () => {
    const cfg = resolveConfig({ consecutiveFailures: 2, cooldownMs: 1000, maxCooldownMs: 3000, halfOpenProbes: 2 });
    let r = freshBreaker('b', T0);
    r = apply(r, recordOutcome(r, cfg, T0, { ok: false }));
    r = apply(r, recordOutcome(r, cfg, T0, { ok: false }));
    expect(r).toMatchObject({ state: 'open', openUntil: T0 + 1000, trips: 1, openedAt: T0 });
    expect(blocksClaims(r, cfg, T0 + 999)).toBe(true);
    expect(admit(r, cfg, T0 + 500, 'p0').result).toMatchObject({ allowed: false, waitMs: 500 });

    let now = T0 + 1000;
    for (const expected of [2000, 3000, 3000]) {
      const a = admit(r, cfg, now, `p${now}`);
      expect(a.transition?.to).toBe('half_open');
      expect(a.result.allowed).toBe(true);
      r = apply(r, a);
      r = apply(r, recordOutcome(r, cfg, now, { ok: false, probeId: `p${now}` }));
      expect(r.openUntil! - now).toBe(expected);
      now = r.openUntil!;
    }
    // Two probes at most, then no more until they report.
    const a1 = admit(r, cfg, now, 'a1');
    r = apply(r, a1);
    const a2 = admit(r, cfg, now, 'a2');
    r = apply(r, a2);
    expect(admit(r, cfg, now, 'a3').result.allowed).toBe(false);
    expect(blocksClaims(r, cfg, now)).toBe(true);
    r = apply(r, recordOutcome(r, cfg, now + 1, { ok: true, probeId: 'a1' }));
    expect(r.state).toBe('half_open');
    const close = recordOutcome(r, cfg, now + 2, { ok: true, probeId: 'a2' });
    expect(close.transition).toMatchObject({ from: 'half_open', to: 'closed' });
    expect(close.next).toMatchObject({ state: 'closed', trips: 0, lastOutage: { from: T0, to: now + 2 } });
  });

  it('while half-open only the probes decide: a call admitted before the trip that fails late records its error, nothing more', () => {
    const cfg = resolveConfig({ consecutiveFailures: 1, cooldownMs: 1000 });
    let r = freshBreaker('b', T0);
    r = apply(r, recordOutcome(r, cfg, T0, { ok: false, probeId: 'fast', error: 'down' }));
    r = apply(r, admit(r, cfg, T0 + 1000, 'probe'));
    expect(r.state).toBe('half_open');
    const stale = recordOutcome(r, cfg, T0 + 1200, { ok: false, probeId: 'slow', error: 'slow call failed' });
    expect(stale.transition).toBeUndefined();
    r = apply(r, stale);
    expect(r).toMatchObject({ state: 'half_open', trips: 1, lastError: 'slow call failed' });
    const close = recordOutcome(r, cfg, T0 + 1400, { ok: true, probeId: 'probe' });
    expect(close.transition).toMatchObject({ from: 'half_open', to: 'closed' });
  });

  it('a probe whose process died frees its slot after probeTimeoutMs', () => {
    const cfg = resolveConfig({ consecutiveFailures: 1, cooldownMs: 1000, probeTimeoutMs: 5000 });
    let r = freshBreaker('b', T0);
    r = apply(r, recordOutcome(r, cfg, T0, { ok: false }));
    r = apply(r, admit(r, cfg, T0 + 1000, 'lost'));
    expect(admit(r, cfg, T0 + 2000, 'next').result.allowed).toBe(false);
    expect(admit(r, cfg, T0 + 6001, 'next').result.allowed).toBe(true);
  });

  it('forced states win over outcomes until reset', () => {
    const cfg = resolveConfig({ consecutiveFailures: 1 });
    let r = apply(freshBreaker('b', T0), force(freshBreaker('b', T0), cfg, T0, 'closed'));
    r = apply(r, recordOutcome(r, cfg, T0, { ok: false }));
    expect(r).toMatchObject({ state: 'closed', forced: 'closed' });
    r = apply(r, force(r, cfg, T0, 'open'));
    expect(admit(r, cfg, T0 + 10 ** 9, 'x').result.allowed).toBe(false);
    r = apply(r, force(r, cfg, T0 + 5, 'reset'));
    expect(r).toMatchObject({ state: 'closed', forced: null });
  });
  it('a close leaves its outage owed for redrive until one process takes it; an owed one is widened by the next outage', () => {
    const cfg = resolveConfig({ consecutiveFailures: 1 });
    const trip = (r: BreakerRecord, now: number) => apply(r, recordOutcome(r, cfg, now, { ok: false }));
    let r = trip(freshBreaker('b', T0), T0);
    r = apply(r, force(r, cfg, T0 + 10, 'reset'));
    expect(r.redrivePending).toEqual({ from: T0, to: T0 + 10 });
    // Nobody took it before the next outage ended: the redrive covers both.
    r = trip(r, T0 + 100);
    r = apply(r, force(r, cfg, T0 + 200, 'closed'));
    expect(r).toMatchObject({ lastOutage: { from: T0 + 100, to: T0 + 200 }, redrivePending: { from: T0, to: T0 + 200 } });
    // A reset after a forced close ends no outage, and keeps what is owed.
    r = apply(r, force(r, cfg, T0 + 300, 'reset'));
    expect(r.redrivePending).toEqual({ from: T0, to: T0 + 200 });
    const taken = takeRedrive(r);
    expect(taken.result).toEqual({ from: T0, to: T0 + 200 });
    expect(takeRedrive(apply(r, taken))).toEqual({ next: null, result: null });
  });

  it('applies queued outcomes in order and stops after the first transition, so each transition is a write of its own', () => {
    const cfg = resolveConfig({ consecutiveFailures: 3, minCalls: 100 });
    const outcome = (ok: boolean) => (r: BreakerRecord, now: number) => recordOutcome(r, cfg, now, { ok, error: ok ? undefined : 'boom' });
    const steps = [outcome(true), outcome(false), outcome(false), outcome(false), outcome(false), outcome(true)];
    const first = applyInOrder(freshBreaker('p', T0), T0, steps);
    expect(first.result).toBe(4); // the third failure in a row trips it
    expect(first.transition).toMatchObject({ from: 'closed', to: 'open' });
    expect(first.next).toMatchObject({ state: 'open', consecutiveFailures: 3 });
    const rest = applyInOrder(first.next!, T0, steps.slice(first.result));
    expect(rest.result).toBe(2);
    expect(rest.transition).toBeUndefined();
    expect(rest.next?.state).toBe('open');
    // Calls that change nothing write nothing.
    expect(applyInOrder(rest.next!, T0, [outcome(true)])).toEqual({ next: null, result: 1 });
  });
});
