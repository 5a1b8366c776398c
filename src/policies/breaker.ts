/**
 * Circuit breaker state machine, as pure functions over a stored record.
 * The store applies them inside a locked transaction, so every process on
 * every machine moves the same breaker through the same states.
 *
 * closed --(failure ratio over the window, or consecutive failures)--> open
 * open --(cool-down elapsed; next admission)--> half_open
 * half_open --(every probe succeeded)--> closed
 * half_open --(a probe failed)--> open, with a longer cool-down (a call admitted before the trip decides nothing)
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';

export type BreakerStateName = 'closed' | 'open' | 'half_open';

export interface BreakerConfig {
  /** Trip when this share of the calls in the window failed (with at least `minCalls` calls). */
  failureRatio: number;
  minCalls: number;
  windowMs: number;
  /** Trip after this many failures in a row, whatever the ratio. */
  consecutiveFailures: number;
  /** First cool-down; it doubles with every trip while the service stays down, up to `maxCooldownMs`. */
  cooldownMs: number;
  maxCooldownMs: number;
  /** Probes let through at once while half-open; that many successes close the breaker. */
  halfOpenProbes: number;
  /** A probe that never reports (its process died) frees its slot after this long. */
  probeTimeoutMs: number;
  /** Which errors count as failures. Default: transient errors and timeouts; permanent errors do not. */
  countsAsFailure?: (err: unknown) => boolean;
}

export const DEFAULT_BREAKER: Omit<BreakerConfig, 'countsAsFailure'> = {
  failureRatio: 0.5,
  minCalls: 10,
  windowMs: 60_000,
  consecutiveFailures: 5,
  cooldownMs: 30_000,
  maxCooldownMs: 10 * 60_000,
  halfOpenProbes: 1,
  probeTimeoutMs: 60_000,
};

/** What a job type (or `rebound.breakers.configure`) says about a breaker. */
export type BreakerSpec = { name: string } & Partial<BreakerConfig>;

export const BREAKER_NAME = /^[A-Za-z0-9_.:\-/]{1,128}$/;

export const breakerOptionsSchema = z
  .object({
    name: z.string().regex(BREAKER_NAME, 'must be 1-128 letters, digits or _ . : - /'),
    failureRatio: z.number().gt(0).max(1).optional(),
    minCalls: z.number().int().positive().optional(),
    windowMs: z.number().int().min(100).optional(),
    consecutiveFailures: z.number().int().positive().optional(),
    cooldownMs: z.number().int().min(1).optional(),
    maxCooldownMs: z.number().int().min(1).optional(),
    halfOpenProbes: z.number().int().positive().optional(),
    probeTimeoutMs: z.number().int().min(100).optional(),
    countsAsFailure: z.custom<(err: unknown) => boolean>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

export function toBreakerSpec(input: string | BreakerSpec, field: string): BreakerSpec {
  const spec = typeof input === 'string' ? { name: input } : input;
  const parsed = breakerOptionsSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`${field}${issue.path.length ? `.${issue.path.join('.')}` : ''}`, issue.message);
  }
  return spec;
}

export interface WindowBucket {
  at: number;
  ok: number;
  fail: number;
}

export interface BreakerRecord {
  name: string;
  state: BreakerStateName;
  /** Set by an operator: the breaker stays in this state until reset. */
  forced: 'open' | 'closed' | null;
  /** When the current outage began (the first trip since the breaker was last closed). */
  openedAt: number | null;
  openUntil: number | null;
  /** Trips since the breaker was last closed: the cool-down grows with them. */
  trips: number;
  consecutiveFailures: number;
  window: WindowBucket[];
  /** Probes in flight while half-open: probe id to the time its slot expires. */
  probes: Record<string, number>;
  probeSuccesses: number;
  lastError: string | null;
  /** The last outage, once over: auto-redrive brings back the jobs that died during it. */
  lastOutage: { from: number; to: number } | null;
  /**
   * The outage whose dead jobs are still to be redriven: set when the breaker closes, taken (and cleared) by the
   * one process that redrives them, which must hold the job definitions declaring the breaker (`takeRedrive`).
   * Absent from records written before it.
   */
  redrivePending?: { from: number; to: number } | null;
  updatedAt: number;
}

export interface BreakerTransition {
  from: BreakerStateName;
  to: BreakerStateName;
  reason: string;
}

export interface Step<T = void> {
  /** null: nothing to write. */
  next: BreakerRecord | null;
  transition?: BreakerTransition;
  result: T;
}

/**
 * Applies steps to a record in order, and stops after the first that changes the breaker's state: each
 * transition is written with an event of its own, so the steps after it go in the next write. `result` is how
 * many steps were applied.
 */
export function applyInOrder(rec: BreakerRecord, now: number, steps: ((r: BreakerRecord, now: number) => Step<void>)[]): Step<number> {
  let record = rec;
  let changed = false;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i](record, now);
    if (s.next) {
      record = s.next;
      changed = true;
    }
    if (s.transition) return { next: record, transition: s.transition, result: i + 1 };
  }
  return { next: changed ? record : null, result: steps.length };
}

export function resolveConfig(spec?: Partial<BreakerConfig>): BreakerConfig {
  return { ...DEFAULT_BREAKER, ...stripUndefined(spec ?? {}) };
}

export function freshBreaker(name: string, now: number): BreakerRecord {
  return {
    name,
    state: 'closed',
    forced: null,
    openedAt: null,
    openUntil: null,
    trips: 0,
    consecutiveFailures: 0,
    window: [],
    probes: {},
    probeSuccesses: 0,
    lastError: null,
    lastOutage: null,
    redrivePending: null,
    updatedAt: now,
  };
}

export function cooldownFor(cfg: BreakerConfig, trips: number): number {
  return Math.min(cfg.maxCooldownMs, cfg.cooldownMs * 2 ** Math.max(0, trips - 1));
}

export function windowCounts(rec: BreakerRecord, cfg: BreakerConfig, now: number) {
  let ok = 0;
  let fail = 0;
  for (const b of rec.window) {
    if (b.at > now - cfg.windowMs) {
      ok += b.ok;
      fail += b.fail;
    }
  }
  return { ok, fail, calls: ok + fail };
}

function liveProbes(rec: BreakerRecord, now: number): Record<string, number> {
  return Object.fromEntries(Object.entries(rec.probes).filter(([, until]) => until > now));
}

function open(rec: BreakerRecord, cfg: BreakerConfig, now: number, reason: string): Step<void> {
  const trips = rec.trips + 1;
  const next: BreakerRecord = {
    ...rec,
    state: 'open',
    openedAt: rec.openedAt ?? now,
    openUntil: now + cooldownFor(cfg, trips),
    trips,
    probes: {},
    probeSuccesses: 0,
    updatedAt: now,
  };
  return { next, transition: { from: rec.state, to: 'open', reason }, result: undefined };
}

function close(rec: BreakerRecord, now: number, reason: string): Step<void> {
  const next: BreakerRecord = { ...freshBreaker(rec.name, now), ...endOutage(rec, now) };
  return { next, transition: { from: rec.state, to: 'closed', reason }, result: undefined };
}

/**
 * What closing the breaker leaves of its outage: the outage, and the redrive it owes. A redrive still owed from an
 * earlier outage (no process holding the definitions has run since) is widened to cover both.
 */
function endOutage(rec: BreakerRecord, now: number): Pick<BreakerRecord, 'lastOutage' | 'redrivePending'> {
  const owed = rec.redrivePending ?? null;
  if (rec.openedAt == null) return { lastOutage: rec.lastOutage, redrivePending: owed };
  const outage = { from: rec.openedAt, to: now };
  return { lastOutage: outage, redrivePending: owed ? { from: Math.min(owed.from, outage.from), to: now } : outage };
}

/** Takes the redrive the breaker's last outage owes, if any: the process that gets it redrives, no other will. */
export function takeRedrive(rec: BreakerRecord): Step<{ from: number; to: number } | null> {
  const owed = rec.redrivePending ?? null;
  return owed ? { next: { ...rec, redrivePending: null }, result: owed } : { next: null, result: null };
}

/** Gives back a redrive taken and not finished (its process is stopping): owed again, widened by any owed since. */
export function giveBackRedrive(rec: BreakerRecord, outage: { from: number; to: number }): Step<void> {
  const owed = rec.redrivePending ?? null;
  const merged = owed ? { from: Math.min(owed.from, outage.from), to: Math.max(owed.to, outage.to) } : outage;
  return { next: { ...rec, redrivePending: merged }, result: undefined };
}

export interface Admission {
  allowed: boolean;
  /** When not allowed: how long to wait before trying again. */
  waitMs: number;
  state: BreakerStateName;
  /** The call holds a half-open probe slot: report its outcome with the same probe id. */
  probe: boolean;
}

/** May a call go through now? Moves open to half-open once the cool-down is over, and hands out probe slots. */
export function admit(rec: BreakerRecord, cfg: BreakerConfig, now: number, probeId: string): Step<Admission> {
  if (rec.forced === 'closed') return { next: null, result: { allowed: true, waitMs: 0, state: rec.state, probe: false } };
  if (rec.forced === 'open') return { next: null, result: { allowed: false, waitMs: cfg.cooldownMs, state: 'open', probe: false } };
  if (rec.state === 'closed') return { next: null, result: { allowed: true, waitMs: 0, state: 'closed', probe: false } };
  let base = rec;
  let transition: BreakerTransition | undefined;
  if (rec.state === 'open') {
    if (now < (rec.openUntil ?? 0)) {
      return { next: null, result: { allowed: false, waitMs: (rec.openUntil ?? now) - now, state: 'open', probe: false } };
    }
    base = { ...rec, state: 'half_open', probes: {}, probeSuccesses: 0, updatedAt: now };
    transition = { from: 'open', to: 'half_open', reason: 'cool-down over; letting probes through' };
  }
  const probes = liveProbes(base, now);
  if (Object.keys(probes).length + base.probeSuccesses >= cfg.halfOpenProbes) {
    const waitMs = Math.max(100, Math.min(...Object.values(probes), now + cfg.cooldownMs) - now);
    return { next: transition ? base : null, transition, result: { allowed: false, waitMs: Math.min(waitMs, 1000), state: 'half_open', probe: false } };
  }
  const next = { ...base, probes: { ...probes, [probeId]: now + cfg.probeTimeoutMs }, updatedAt: now };
  return { next, transition, result: { allowed: true, waitMs: 0, state: 'half_open', probe: true } };
}

/**
 * A probe still running keeps its slot: its process renews it while the call runs, so only a probe whose process
 * died loses its slot, after `probeTimeoutMs`. (A call longer than that lost its slot to the next probe, which
 * ran beside it, and its success was then ignored: under steady work each probe was replaced before it ended, and
 * the breaker stayed half-open while every call succeeded.)
 */
export function renewProbe(rec: BreakerRecord, cfg: BreakerConfig, now: number, probeId: string): Step<void> {
  if (rec.forced || rec.state !== 'half_open' || !(probeId in rec.probes)) return { next: null, result: undefined };
  return { next: { ...rec, probes: { ...rec.probes, [probeId]: now + cfg.probeTimeoutMs }, updatedAt: now }, result: undefined };
}

/** Records the outcome of one call, and trips or closes the breaker when it should. */
export function recordOutcome(
  rec: BreakerRecord,
  cfg: BreakerConfig,
  now: number,
  outcome: { ok: boolean; probeId?: string; error?: string },
): Step<void> {
  if (rec.forced) return { next: null, result: undefined };
  const isProbe = outcome.probeId != null && outcome.probeId in rec.probes;
  if (rec.state === 'open' || (rec.state === 'half_open' && !isProbe)) {
    // A call that began before the trip (or a probe whose expired slot went to another): it changes nothing but the
    // last error. Only the probes decide a half-open breaker: a slow call from before the trip that fails late must
    // not reopen it (with a longer cool-down) over a probe that succeeds.
    return outcome.ok ? { next: null, result: undefined } : { next: { ...rec, lastError: outcome.error ?? rec.lastError, updatedAt: now }, result: undefined };
  }
  if (rec.state === 'half_open') {
    const probes = { ...rec.probes };
    delete probes[outcome.probeId!];
    const base = { ...rec, probes, lastError: outcome.ok ? rec.lastError : (outcome.error ?? rec.lastError), updatedAt: now };
    if (!outcome.ok) return open(base, cfg, now, `a probe failed: ${outcome.error ?? 'error'}`);
    const successes = rec.probeSuccesses + 1;
    if (successes >= cfg.halfOpenProbes) return close(base, now, `${successes} probe(s) succeeded`);
    return { next: { ...base, probeSuccesses: successes }, result: undefined };
  }
  const bucketMs = Math.max(1, Math.floor(cfg.windowMs / 10));
  const at = now - (now % bucketMs);
  const window = rec.window.filter((b) => b.at > now - cfg.windowMs).map((b) => ({ ...b }));
  let bucket = window.find((b) => b.at === at);
  if (!bucket) window.push((bucket = { at, ok: 0, fail: 0 }));
  if (outcome.ok) bucket.ok++;
  else bucket.fail++;
  const next: BreakerRecord = {
    ...rec,
    window,
    consecutiveFailures: outcome.ok ? 0 : rec.consecutiveFailures + 1,
    lastError: outcome.ok ? rec.lastError : (outcome.error ?? rec.lastError),
    updatedAt: now,
  };
  if (outcome.ok) return { next, result: undefined };
  if (next.consecutiveFailures >= cfg.consecutiveFailures) {
    return open(next, cfg, now, `${next.consecutiveFailures} consecutive failures; last: ${outcome.error ?? 'error'}`);
  }
  const c = windowCounts(next, cfg, now);
  if (c.calls >= cfg.minCalls && c.fail / c.calls >= cfg.failureRatio) {
    return open(next, cfg, now, `${c.fail} of ${c.calls} calls failed in ${cfg.windowMs} ms; last: ${outcome.error ?? 'error'}`);
  }
  return { next, result: undefined };
}

/** An operator's order: force open, force closed, or reset (closed, unforced, counters cleared). */
export function force(rec: BreakerRecord, cfg: BreakerConfig, now: number, to: 'open' | 'closed' | 'reset'): Step<void> {
  if (to === 'reset') {
    const next = { ...freshBreaker(rec.name, now), ...endOutage(rec, now) };
    return { next, transition: { from: rec.state, to: 'closed', reason: 'reset by operator' }, result: undefined };
  }
  if (to === 'open') {
    const next: BreakerRecord = {
      ...rec,
      state: 'open',
      forced: 'open',
      openedAt: rec.openedAt ?? now,
      openUntil: null,
      probes: {},
      probeSuccesses: 0,
      updatedAt: now,
    };
    return { next, transition: { from: rec.state, to: 'open', reason: 'forced open by operator' }, result: undefined };
  }
  const next = { ...freshBreaker(rec.name, now), forced: 'closed' as const, ...endOutage(rec, now) };
  return { next, transition: { from: rec.state, to: 'closed', reason: 'forced closed by operator' }, result: undefined };
}

/** Should workers stop claiming jobs guarded by this breaker right now? */
export function blocksClaims(rec: BreakerRecord, cfg: BreakerConfig, now: number): boolean {
  if (rec.forced === 'closed') return false;
  if (rec.forced === 'open') return true;
  if (rec.state === 'open') return now < (rec.openUntil ?? 0);
  if (rec.state === 'half_open') return Object.keys(liveProbes(rec, now)).length + rec.probeSuccesses >= cfg.halfOpenProbes;
  return false;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
