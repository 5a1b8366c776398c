/**
 * Flow limits of job types, as a worker plugin:
 * - `concurrency: { max, key? }`: at most `max` jobs running at once across
 *   every process (slots in the store, held by a live lease);
 * - `rateLimit: { max, perMs, key? }`: a token bucket in the store, so the
 *   rate holds across every process;
 * - both are group-committed: the tokens or slots that this process's starting
 *   jobs ask for while its last write to a key is in flight are taken together
 *   in its next write (one locked write per job made processes sharing a key
 *   take turns at its lock: 4 workers ran 10 ms jobs at 105-194 a second);
 * - a job over a limit is put back to sleep (Snooze) without using an attempt,
 *   and this process stops claiming its type for a moment;
 * - `retryBudget`: retries may be at most `ratio` of the type's recent attempts
 *   (counted per process); beyond it, a retry is pushed out by `deferMs`.
 */
import type { JobDefinition, Logger } from '../define.ts';
import { KeyedBatcher, ONE_FLUSH_AT_A_TIME } from '../engine/batcher.ts';
import { BreakerOpenError, LeaseLostError, ShutdownError, Snooze } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Job } from '../job.ts';
import { DEFAULT_RETRY_BUDGET, limitKey, type RetryBudget } from '../policies/limits.ts';
import { backoffDelay, classifyError } from '../policies/retry.ts';
import type { SlotHolder } from '../store/limits.ts';
import type { Store } from '../store/store.ts';
import type { WorkerPlugin } from './plugin.ts';

export interface LimitsDeps {
  store: Store;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
}

/** How long a job refused a concurrency slot sleeps before it tries again (plus jitter). */
const SLOT_RETRY_MS = 200;

interface BudgetWindow {
  attempts: number[];
  retries: number[];
  warnedAt: number;
}

export class Limits {
  /** Types this process holds back from claiming until the given time. */
  private readonly blockedUntil = new Map<string, number>();
  private readonly budgets = new Map<string, BudgetWindow>();
  private readonly tokens = new KeyedBatcher<TokenAsk, { taken: boolean; waitMs: number }>((_, asks) => this.takeTokens(asks), ONE_FLUSH_AT_A_TIME);
  private readonly slots = new KeyedBatcher<SlotAsk, boolean>((_, asks) => this.acquireSlots(asks), ONE_FLUSH_AT_A_TIME);
  private readonly releases = new KeyedBatcher<SlotHolder, void>((key, holders) => this.releaseSlots(key, holders), ONE_FLUSH_AT_A_TIME);

  constructor(private readonly deps: LimitsDeps) {}

  /** Concurrency slots in use now, by limit key, across every process. */
  slotsInUse(): Promise<Record<string, number>> {
    return this.deps.store.limits.slotsInUse();
  }

  /** This process's view of a type's retry budget. */
  retryBudget(type: string, budget: Partial<RetryBudget> = {}): { attempts: number; retries: number; allowed: number } {
    const b = { ...DEFAULT_RETRY_BUDGET, ...budget };
    const w = this.window(type, b, this.deps.now());
    return { attempts: w.attempts.length, retries: w.retries.length, allowed: Math.max(b.minRetries, Math.floor(b.ratio * w.attempts.length)) };
  }

  plugin(): WorkerPlugin {
    return {
      name: 'limits',
      gate: (now) => {
        const blockedTypes: string[] = [];
        for (const [type, until] of this.blockedUntil) {
          if (until > now) blockedTypes.push(type);
          else this.blockedUntil.delete(type);
        }
        return { blockedTypes };
      },
      wraps: (_job, def) => def.concurrency != null || def.rateLimit != null || def.retryBudget != null,
      wrap: (next, _ctx, job, def) => this.run(next, job, def),
      retryDelay: (job, def, delayMs, now) => (def.retryBudget ? this.budgetedDelay(job, def, delayMs, now) : delayMs),
    };
  }

  private async run(next: () => Promise<unknown>, job: Job, def: JobDefinition): Promise<unknown> {
    const { now } = this.deps;
    let slot: string | null = null;
    if (def.concurrency) {
      const key = limitKey('conc', job.type, def.concurrency.key, job.payload);
      const { max } = def.concurrency;
      const ok = await this.slots.add(`${key}\0${max}`, { key, max, jobId: job.id, token: job.leaseToken });
      if (!ok) {
        const wait = SLOT_RETRY_MS + Math.floor(Math.random() * SLOT_RETRY_MS);
        if (typeof def.concurrency.key !== 'function') this.hold(job.type, now() + wait / 2);
        throw new Snooze(now() + wait, `concurrency limit ${key} (${max}) reached`);
      }
      slot = key;
    }
    try {
      if (def.rateLimit) {
        const key = limitKey('rate', job.type, def.rateLimit.key, job.payload);
        const { max, perMs } = def.rateLimit;
        const r = await this.tokens.add(`${key}\0${max}\0${perMs}`, { key, max, perMs });
        if (!r.taken) {
          if (typeof def.rateLimit.key !== 'function') this.hold(job.type, now() + r.waitMs);
          // Jitter spreads the sleepers over the coming tokens instead of waking them all at the first.
          throw new Snooze(now() + r.waitMs + Math.floor(Math.random() * r.waitMs), `rate limit ${key} (${max} per ${perMs} ms)`);
        }
      }
      // The budget counts the attempt here; its retry, if any, is counted where the worker decides it (retryDelay).
      if (def.retryBudget) this.window(job.type, { ...DEFAULT_RETRY_BUDGET, ...def.retryBudget }, now()).attempts.push(now());
      return await next();
    } finally {
      // Under this attempt's token: the handler may return after its job was claimed again (see releaseSlots).
      if (slot) await this.releases.add(slot, { jobId: job.id, token: job.leaseToken }).catch((error) => this.deps.events.emit('worker:error', { workerId: '-', error, during: 'release slot' }));
    }
  }

  /** Asks for tokens of one bucket with one size and rate: the first `taken` asks get one. */
  private async takeTokens(asks: TokenAsk[]) {
    const { key, max, perMs } = asks[0];
    const { taken, waitMs } = await this.deps.store.limits.takeTokens({ key, max, perMs, now: this.deps.now() }, asks.length);
    return asks.map((_, i) => (i < taken ? { taken: true, waitMs: 0 } : { taken: false, waitMs }));
  }

  private async acquireSlots(asks: SlotAsk[]) {
    const { key, max } = asks[0];
    const granted = new Set(await this.deps.store.limits.acquireSlots({ key, max, holders: asks, now: this.deps.now() }));
    return asks.map((a) => granted.has(a.jobId));
  }

  private async releaseSlots(key: string, holders: SlotHolder[]) {
    await this.deps.store.limits.releaseSlots(key, holders);
    return holders.map(() => undefined);
  }

  private hold(type: string, until: number) {
    if ((this.blockedUntil.get(type) ?? 0) < until) this.blockedUntil.set(type, until);
  }

  private window(type: string, b: RetryBudget, now: number): BudgetWindow {
    let w = this.budgets.get(type);
    if (!w) this.budgets.set(type, (w = { attempts: [], retries: [], warnedAt: 0 }));
    const from = now - b.windowMs;
    while (w.attempts.length && w.attempts[0] <= from) w.attempts.shift();
    while (w.retries.length && w.retries[0] <= from) w.retries.shift();
    return w;
  }

  /**
   * A retry the worker decided: counted, or, beyond the budget, pushed out to somewhere in the second half of
   * `deferMs`. Decided here rather than around the handler: an attempt that timed out was retried while its
   * handler ran on, so the budget never saw it (nor a handler that hangs and never returns).
   */
  private budgetedDelay(job: Job, def: JobDefinition, delayMs: number, now: number): number {
    const b: RetryBudget = { ...DEFAULT_RETRY_BUDGET, ...def.retryBudget };
    const w = this.window(job.type, b, now);
    const allowed = Math.max(b.minRetries, Math.floor(b.ratio * w.attempts.length));
    if (w.retries.length < allowed) {
      w.retries.push(now);
      return delayMs;
    }
    const deferMs = b.deferMs ?? b.windowMs;
    if (now - w.warnedAt >= b.windowMs) {
      w.warnedAt = now;
      const e = { type: job.type, retries: w.retries.length, attempts: w.attempts.length, deferMs };
      this.deps.logger.warn(e, `retry budget of ${job.type} exhausted: retries pushed out`);
      this.deps.events.emit('retry_budget:exhausted', e);
    }
    return Math.max(delayMs, Math.floor(deferMs / 2 + (Math.random() * deferMs) / 2));
  }
}

interface TokenAsk {
  key: string;
  max: number;
  perMs: number;
}

interface SlotAsk extends SlotHolder {
  key: string;
  max: number;
}

function willRetry(err: unknown, job: Job, def: JobDefinition): boolean {
  if (err instanceof Snooze || err instanceof ShutdownError || err instanceof LeaseLostError || err instanceof BreakerOpenError) return false;
  if ((err as { code?: unknown })?.code === 'breaker_open') return false;
  return job.attempt < job.maxAttempts && classifyError(err, def.classify).kind !== 'permanent';
}
