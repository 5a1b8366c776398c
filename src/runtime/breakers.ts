/**
 * Named circuit breakers, shared by every process through the store.
 * `rebound.breakers` is the library API (list, force, reset, guard); its
 * worker plugin keeps jobs of a type whose breaker is open from being claimed,
 * puts back to sleep (without charging an attempt) any that slipped through,
 * records each guarded attempt's outcome, and hands handlers `ctx.breaker(name)`.
 */
import { randomUUID } from 'node:crypto';
import type { BreakerGuard, JobDefinition, Logger } from '../define.ts';
import { BreakerOpenError, ConfigError, LeaseLostError, ShutdownError, Snooze, ValidationError } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import { KeyedBatcher, ONE_FLUSH_AT_A_TIME } from '../engine/batcher.ts';
import { MAX_LIST_LIMIT } from '../engine/job-query.ts';
import {
  admit,
  applyInOrder,
  blocksClaims,
  BREAKER_NAME,
  breakerOptionsSchema,
  force,
  recordOutcome,
  renewProbe,
  resolveConfig,
  takeRedrive,
  giveBackRedrive,
  windowCounts,
  freshBreaker,
  type Admission,
  type BreakerConfig,
  type BreakerRecord,
  type BreakerStateName,
  type Step,
} from '../policies/breaker.ts';
import { classifyError, type Classifier } from '../policies/retry.ts';
import type { BreakerEvent } from '../store/breakers.ts';
import type { Store } from '../store/store.ts';
import type { WorkerPlugin } from './plugin.ts';
import { redriveAfterOutage } from './auto-redrive.ts';

export interface BreakerView {
  name: string;
  state: BreakerStateName;
  forced: 'open' | 'closed' | null;
  /** Whether workers hold back jobs guarded by it right now. */
  blocking: boolean;
  openedAt: number | null;
  openUntil: number | null;
  trips: number;
  consecutiveFailures: number;
  window: { calls: number; failures: number; windowMs: number };
  probesInFlight: number;
  lastError: string | null;
  lastOutage: { from: number; to: number } | null;
  /** An outage whose dead jobs wait for a process that runs the breaker's job types to redrive them. */
  redrivePending: { from: number; to: number } | null;
  updatedAt: number;
  /** Job types that declare this breaker (in this client's definitions). */
  types: string[];
}

export interface BreakersDeps {
  store: Store;
  events: ReboundEmitter;
  now: () => number;
  logger: Logger;
  defs: () => ReadonlyMap<string, JobDefinition>;
}

/** How long a job refused by a breaker sleeps at most before it is looked at again (the claim gate holds it meanwhile). */
const MAX_SNOOZE_MS = 2000;

/**
 * Job types that share a breaker share its options: a breaker has one threshold, one cool-down, one
 * `countsAsFailure`. Two types declaring one option differently are refused, rather than the last one
 * defined deciding for both without a word.
 */
export function checkSharedBreaker(def: JobDefinition, others: Iterable<JobDefinition>): void {
  const spec = def.breaker;
  if (!spec) return;
  for (const other of others) {
    if (other.type === def.type || other.breaker?.name !== spec.name) continue;
    const theirs = other.breaker as Record<string, unknown>;
    for (const [key, value] of Object.entries(spec)) {
      if (key === 'name' || value === undefined || theirs[key] === undefined || theirs[key] === value) continue;
      throw new ConfigError(
        `job types "${other.type}" and "${def.type}" declare breaker "${spec.name}" with different ${key}: ` +
          `a breaker shared by types has one set of options; give them the same ${key}, declare it on one type only, ` +
          `or set it with rebound.breakers.configure("${spec.name}", { ${key} })`,
      );
    }
  }
}

export class Breakers {
  private readonly configured = new Map<string, Partial<BreakerConfig>>();
  private cache: { at: number; records: Map<string, BreakerRecord> } | null = null;
  private refreshing: Promise<Map<string, BreakerRecord>> | null = null;
  /** How long the claim gate trusts its copy of the breakers (ms). */
  refreshMs = 250;
  /** Dead jobs redriven per second after an outage ends. */
  redrivePerSecond = 20;
  private readonly redrives = new Set<Promise<unknown>>();
  /** Aborted when a worker stops: redrives under way stop after their current batch. */
  private redriveStop = new AbortController();
  /** Breakers whose owed redrive this process is taking right now. */
  private readonly taking = new Set<string>();
  /** Each breaker's outcomes waiting to be written (see `record`). */
  private readonly outcomes = new KeyedBatcher<OutcomeStep, void>((name, steps) => this.applyAll(name, steps), ONE_FLUSH_AT_A_TIME);
  /** Each breaker's admission reads: calls arriving while one is in flight share the next (see `admit`). */
  private readonly reads = new KeyedBatcher<null, BreakerRecord | null>((name, asks) => this.readFor(name, asks.length), ONE_FLUSH_AT_A_TIME);

  constructor(private readonly deps: BreakersDeps) {}

  /** Sets a breaker's options (they override those its job types declare). */
  configure(name: string, options: Partial<BreakerConfig>): this {
    checkName(name);
    const parsed = breakerOptionsSchema.safeParse({ ...options, name });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ValidationError(`breakers.configure("${name}").${issue.path.join('.')}`, issue.message);
    }
    this.configured.set(name, { ...this.configured.get(name), ...options });
    return this;
  }

  /** The effective options: defaults, then what job types declare, then `configure()`. */
  config(name: string): BreakerConfig {
    const declared = [...this.deps.defs().values()].filter((d) => d.breaker?.name === name).map((d) => d.breaker!);
    const { name: _n, ...fromTypes } = Object.assign({ name }, ...declared);
    return resolveConfig({ ...fromTypes, ...this.configured.get(name) });
  }

  private typesOf(name: string): string[] {
    return [...this.deps.defs().values()].filter((d) => d.breaker?.name === name).map((d) => d.type);
  }

  /** Every breaker stored or declared, with its state. */
  async list(): Promise<BreakerView[]> {
    const now = this.deps.now();
    const records = new Map((await this.deps.store.breakers.list()).map((r) => [r.name, r]));
    for (const d of this.deps.defs().values()) if (d.breaker && !records.has(d.breaker.name)) records.set(d.breaker.name, freshBreaker(d.breaker.name, now));
    for (const name of this.configured.keys()) if (!records.has(name)) records.set(name, freshBreaker(name, now));
    return [...records.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => this.view(r, now));
  }

  async get(name: string): Promise<BreakerView> {
    checkName(name);
    const now = this.deps.now();
    return this.view((await this.deps.store.breakers.get(name)) ?? freshBreaker(name, now), now);
  }

  /** State changes, newest first. */
  async events(filter: { name?: string; limit?: number } = {}): Promise<BreakerEvent[]> {
    // SQLite reads LIMIT -1 as no limit and PostgreSQL refuses it with a raw error: checked here for both.
    if (filter.limit !== undefined && !(Number.isInteger(filter.limit) && filter.limit >= 1 && filter.limit <= MAX_LIST_LIMIT)) {
      throw new ValidationError('filter.limit', `must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    return this.deps.store.breakers.listEvents(filter);
  }

  /**
   * An operator's order: `open` (stays open until closed or reset), `closed`
   * (stays closed whatever fails), or `reset` (closed, counters cleared, back to automatic).
   */
  async force(name: string, to: 'open' | 'closed' | 'reset', opts: { actor?: string } = {}): Promise<BreakerView> {
    checkName(name);
    if (!['open', 'closed', 'reset'].includes(to)) throw new ValidationError('to', 'must be open, closed or reset');
    const actor = opts.actor ?? 'library';
    const cfg = this.config(name);
    const { record } = await this.apply(name, (r, now) => force(r, cfg, now, to), actor);
    this.deps.events.emit('operator:action', { actor, action: `breaker.${to === 'reset' ? 'reset' : to === 'open' ? 'force_open' : 'force_close'}`, target: `breaker:${name}` });
    return this.view(record, this.deps.now());
  }

  reset(name: string, opts: { actor?: string } = {}): Promise<BreakerView> {
    return this.force(name, 'reset', opts);
  }

  /**
   * Guards calls with a breaker: `guard('payments').run(() => charge())`. With a job's `signal` (as `ctx.breaker`
   * has), a call still running when the job is aborted ends there and counts as its abort's reason: a timeout
   * counts, a shutdown or a lost lease does not, as for a job type's own breaker.
   */
  guard(name: string, classify?: Classifier, signal?: AbortSignal): BreakerGuard {
    checkName(name);
    return {
      run: async <T>(fn: () => Promise<T> | T): Promise<T> => {
        const probeId = `call:${randomUUID()}`;
        const adm = await this.admit(name, probeId);
        if (!adm.allowed) throw new BreakerOpenError(name, adm.state, adm.waitMs);
        const held = adm.probe ? this.holdProbe(name, probeId) : null;
        try {
          const value = signal ? await raceAbort(Promise.resolve(fn()), signal) : await fn();
          held?.();
          await this.report(name, probeId, null, adm.probe);
          return value;
        } catch (err) {
          held?.();
          const reason = signal?.aborted ? signal.reason : err;
          await this.report(name, probeId, this.counts(name, reason, classify) ? reason : undefined, adm.probe);
          throw err;
        }
      },
    };
  }

  /** The worker plugin every Rebound client installs. */
  plugin(): WorkerPlugin {
    return {
      name: 'breakers',
      gate: async (now) => {
        const guarded = [...this.deps.defs().values()].filter((d) => d.breaker);
        if (guarded.length === 0) return {};
        const records = await this.records(now);
        const blockedTypes = guarded
          .filter((d) => {
            const r = records.get(d.breaker!.name);
            return r != null && blocksClaims(r, this.config(d.breaker!.name), now);
          })
          .map((d) => d.type);
        // A breaker closed by a process without these definitions (the CLI, say) left its redrive to us.
        for (const d of guarded) if (records.get(d.breaker!.name)?.redrivePending) this.afterOutage(d.breaker!.name);
        return { blockedTypes };
      },
      extendContext: (ctx, _job, def) => {
        // A closure per attempt, for its signal (read only if the handler guards a call: a signal is made on demand).
        ctx.breaker = (name: string) => this.guard(name, def.classify, ctx.signal);
      },
      // Only a type with a breaker of its own is wrapped; any handler's breaker_open error becomes a snooze.
      wraps: (_job, def) => def.breaker != null,
      wrap: (next, ctx, job, def) => this.runGuarded(next, ctx.signal, job.id, job.leaseToken, def),
      mapError: (err) => toSnooze(err, this.deps.now()),
      stop: () => this.stop(),
    };
  }

  private async runGuarded(next: () => Promise<unknown>, signal: AbortSignal, jobId: string, token: number, def: JobDefinition) {
    const name = def.breaker!.name;
    const probeId = `job:${jobId}:${token}`;
    const adm = await this.admit(name, probeId);
    if (!adm.allowed) throw new Snooze(this.deps.now() + snoozeMs(adm.waitMs), `circuit breaker "${name}" is ${adm.state}`);
    const held = adm.probe ? this.holdProbe(name, probeId) : null;
    try {
      // Race the abort too: a handler that ignores its timeout still counts as a timed-out call.
      const value = await raceAbort(next(), signal);
      held?.();
      await this.report(name, probeId, null, adm.probe);
      return value;
    } catch (err) {
      held?.();
      const reason = signal.aborted ? signal.reason : err;
      await this.report(name, probeId, this.counts(name, reason, def.classify) ? reason : undefined, adm.probe);
      throw toSnooze(err, this.deps.now());
    }
  }

  /**
   * Renews a running probe's slot every third of `probeTimeoutMs` (renewProbe says why), until the returned
   * function is called, before its outcome is reported. Renewals queue with the outcomes, so none lands after it.
   */
  private holdProbe(name: string, probeId: string): () => void {
    const everyMs = Math.max(30, Math.floor(this.config(name).probeTimeoutMs / 3));
    const timer = setInterval(() => {
      const cfg = this.config(name);
      this.record(name, (r, now) => renewProbe(r, cfg, now, probeId)).catch((error: unknown) => {
        this.deps.events.emit('worker:error', { workerId: '-', error, during: `breaker ${name}` });
      });
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private counts(name: string, err: unknown, classify?: Classifier): boolean {
    if (err instanceof Snooze || err instanceof ShutdownError || err instanceof LeaseLostError || err instanceof BreakerOpenError) return false;
    const custom = this.config(name).countsAsFailure;
    if (custom) return custom(err);
    return classifyError(err, classify).kind !== 'permanent';
  }

  private async admit(name: string, probeId: string): Promise<Admission> {
    // Closed and not forced: a plain read lets the call through without locking the breaker. The calls that ask
    // while a read is in flight share the next one, so each still sees the breaker as it was after it asked.
    const current = await this.reads.add(name, null);
    if (current == null || (current.state === 'closed' && current.forced == null)) {
      return { allowed: true, waitMs: 0, state: 'closed', probe: false };
    }
    const cfg = this.config(name);
    const { result } = await this.apply(name, (r, now) => admit(r, cfg, now, probeId), 'breaker');
    return result;
  }

  /**
   * For a stopping worker or client: writes the outcomes still queued, and stops the redrives under way after their
   * current batch, leaving the rest owed (afterOutage). A stop used to wait for all of it: minutes for a large
   * outage at its bounded rate, past a supervisor's kill, and the jobs not yet redriven stayed dead.
   */
  async stop(): Promise<void> {
    await this.flush();
    const stopping = this.redriveStop;
    this.redriveStop = new AbortController();
    stopping.abort();
    await Promise.allSettled([...this.redrives]);
  }

  /**
   * Records a call's outcome: `null` success, an error a counted failure, `undefined` not counted (frees a probe
   * slot). The promise settles once the outcome is written, or at once for a success that was not a probe: such a
   * success cannot move the breaker, and a guarded job that waited for it held its slot for the writes queued
   * before it (docs/self-healing.md, "Circuit breakers", has the figures). A failure is waited for, so that the
   * calls after it are admitted against a breaker that has counted it, and a probe, so that the breaker has closed
   * (or reopened) when it returns. Outcomes are written in the order reported either way; `flush` waits for them
   * all, and a worker's stop and `close()` flush.
   */
  private report(name: string, probeId: string, outcome: unknown, probe: boolean): Promise<void> {
    // Not counted and holding no probe slot: there is nothing to write.
    if (outcome === undefined && !probe) return Promise.resolve();
    const cfg = this.config(name);
    const ok = outcome === null;
    const error = ok || outcome === undefined ? undefined : describe(outcome);
    const step: OutcomeStep = outcome === undefined ? (r) => releaseProbe(r, probeId) : (r, now) => recordOutcome(r, cfg, now, { ok, probeId, error });
    const written = this.record(name, step).catch((err: unknown) => {
      this.deps.events.emit('worker:error', { workerId: '-', error: err, during: `breaker ${name}` });
    });
    return ok && !probe ? Promise.resolve() : written;
  }

  /** Resolves once every outcome reported so far is written to the store. */
  flush(): Promise<void> {
    return this.outcomes.drain();
  }

  /**
   * Writes an outcome to the shared breaker. A write locks the breaker's row until it commits, so outcomes are
   * group-committed: those reported while this process's last write to the breaker is in flight go together in
   * the next, applied in order (one write per call capped a guarded job type at about 100 calls a second on
   * PostgreSQL across four worker processes, each call waiting for the row's lock).
   */
  private record(name: string, step: OutcomeStep): Promise<void> {
    return this.outcomes.add(name, step);
  }

  private async readFor(name: string, callers: number): Promise<(BreakerRecord | null)[]> {
    const record = await this.deps.store.breakers.get(name);
    return Array.from({ length: callers }, () => record);
  }

  /** Applies queued outcomes in as few writes as their transitions allow (each transition is a write of its own). */
  private async applyAll(name: string, steps: OutcomeStep[]): Promise<void[]> {
    for (let done = 0; done < steps.length; ) {
      const rest = steps.slice(done);
      done += (await this.apply(name, (r, now) => applyInOrder(r, now, rest), 'breaker')).result;
    }
    return steps.map(() => undefined);
  }

  private async apply<T>(name: string, step: (r: BreakerRecord, now: number) => Step<T>, actor: string) {
    const now = this.deps.now();
    const out = await this.deps.store.breakers.update(name, now, (r) => step(r, now), actor);
    if (this.cache) this.cache.records.set(name, out.record);
    if (out.event) {
      const e = out.event;
      this.deps.events.emit('breaker:changed', { name, from: e.from, to: e.to, reason: e.reason, actor: e.actor, at: e.at });
      const log = e.to === 'open' ? 'warn' : 'info';
      this.deps.logger[log]({ breaker: name, from: e.from, to: e.to, reason: e.reason, actor: e.actor }, `circuit breaker ${name} is ${e.to}`);
      if (e.to === 'closed' && out.record.redrivePending) this.afterOutage(name);
    }
    return out;
  }

  /**
   * When a breaker closes, the jobs that died of its outage come back, at a bounded rate. Which jobs those are
   * takes the job types declaring the breaker, which only a process holding their definitions knows: a close
   * leaves the redrive owed on the record (`redrivePending`), and a process with the types takes it under the
   * breaker's lock, so exactly one redrives. That is the closing process if it has them; else (an operator's
   * reset or close from the CLI, or any client without the definitions) a worker running them, at its next claim
   * gate (every 250 ms).
   */
  private afterOutage(name: string) {
    const types = this.typesOf(name);
    if (types.length === 0 || this.taking.has(name)) return;
    this.taking.add(name);
    const { signal } = this.redriveStop;
    const p = this.apply(name, (r) => takeRedrive(r), 'breaker')
      .finally(() => this.taking.delete(name))
      .then(async ({ result: outage }) => {
        if (!outage) return; // another process took it
        await redriveAfterOutage(
          { store: this.deps.store, events: this.deps.events, logger: this.deps.logger, now: this.deps.now },
          { breaker: name, types, since: outage.from - this.config(name).windowMs, until: outage.to, perSecond: this.redrivePerSecond, signal },
        );
        // Stopped before the end: owed again, for another process (or this one's next worker) to finish.
        if (signal.aborted) await this.apply(name, (r) => giveBackRedrive(r, outage), 'breaker');
      })
      .catch((error) => this.deps.events.emit('worker:error', { workerId: '-', error, during: `auto-redrive ${name}` }));
    this.redrives.add(p);
    void p.finally(() => this.redrives.delete(p));
  }

  private async records(now: number): Promise<Map<string, BreakerRecord>> {
    if (this.cache && now - this.cache.at < this.refreshMs) return this.cache.records;
    this.refreshing ??= this.deps.store.breakers
      .list()
      .then((list) => {
        const records = new Map(list.map((r) => [r.name, r]));
        this.cache = { at: now, records };
        return records;
      })
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private view(r: BreakerRecord, now: number): BreakerView {
    const cfg = this.config(r.name);
    const w = windowCounts(r, cfg, now);
    return {
      name: r.name,
      state: r.state,
      forced: r.forced,
      blocking: blocksClaims(r, cfg, now),
      openedAt: r.openedAt,
      openUntil: r.openUntil,
      trips: r.trips,
      consecutiveFailures: r.consecutiveFailures,
      window: { calls: w.calls, failures: w.fail, windowMs: cfg.windowMs },
      probesInFlight: Object.values(r.probes).filter((until) => until > now).length,
      lastError: r.lastError,
      lastOutage: r.lastOutage,
      redrivePending: r.redrivePending ?? null,
      updatedAt: r.updatedAt,
      types: this.typesOf(r.name),
    };
  }
}

type OutcomeStep = (r: BreakerRecord, now: number) => Step<void>;

function releaseProbe(r: BreakerRecord, probeId: string): Step<void> {
  if (!(probeId in r.probes)) return { next: null, result: undefined };
  const probes = { ...r.probes };
  delete probes[probeId];
  return { next: { ...r, probes }, result: undefined };
}

function checkName(name: string) {
  if (typeof name !== 'string' || !BREAKER_NAME.test(name)) throw new ValidationError('breaker', `"${name}" must be 1-128 letters, digits or _ . : - /`);
}

/** A BreakerOpenError a handler let through puts its job back to sleep instead of charging an attempt. */
function toSnooze(err: unknown, now: number): unknown {
  const e = err as { code?: unknown; retryAfterMs?: unknown; breaker?: unknown };
  if (e && e.code === 'breaker_open' && typeof e.retryAfterMs === 'number') {
    return new Snooze(now + snoozeMs(e.retryAfterMs), `circuit breaker "${String(e.breaker)}" is open`);
  }
  return err;
}

const snoozeMs = (waitMs: number) => Math.min(MAX_SNOOZE_MS, Math.max(50, waitMs)) + Math.floor(Math.random() * 100);

/**
 * Settles as `work` does, or rejects with the signal's reason once it is aborted. The listener goes when `work`
 * settles: a handler may guard many calls in turn on one signal.
 */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 500);
  return String(err).slice(0, 500);
}
