/**
 * Watches the dead letter queue so it cannot rot unnoticed, and heals it:
 * - alert rules (dead count, growth within a window, oldest dead age) log an
 *   error, emit `dlq:alert` and POST the alert as JSON to a webhook; a rule
 *   fires when its condition becomes true, and again after `repeatMs` while it stays true;
 *   a firing is logged and emitted once, and only its webhook delivery is retried at the next checks;
 * - redrive policies bring dead jobs back on a schedule (every `everyMs`),
 *   selected by type, fingerprint and dead reason, at a bounded rate, each
 *   recorded with the actor `auto-redrive:policy:<name>`.
 * (Redrive when a breaker closes is done by the breaker itself: runtime/breakers.ts.)
 * Every process may run the same watcher: only the holder of its lease (an election of its own, not the
 * coordinator's, so watching the DLQ starts no schedules or pruning) checks rules and runs policies.
 */
import type { Logger } from '../define.ts';
import { ValidationError } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import { Elector } from '../coordination/leader.ts';
import type { Store } from '../store/store.ts';
import { redriveMatching } from './auto-redrive.ts';

export interface DlqAlertRule {
  name: string;
  /** Only dead jobs of this type (default: all). */
  type?: string;
  /** Fire when at least this many jobs are dead. */
  count?: number;
  /** Fire when at least `count` jobs died within `withinMs`. */
  growth?: { count: number; withinMs: number };
  /** Fire when the longest-dead job has been dead this long. */
  oldestAgeMs?: number;
  /** POSTed the alert as JSON (node's fetch; 5 s timeout). */
  webhook?: string;
  /** While the condition holds, fire again this often (default one hour). */
  repeatMs?: number;
}

export interface RedrivePolicy {
  name: string;
  type?: string;
  fingerprint?: string;
  /** Dead reasons to bring back (default: exhausted and timeout; permanent errors and poison stay dead unless named). */
  reasons?: string[];
  /** Run every this often. */
  everyMs: number;
  /** Only jobs dead at least this long (default 0). */
  minDeadMs?: number;
  /** At most this many per run (default 100), `perSecond` at a time (default 10). */
  maxPerRun?: number;
  perSecond?: number;
}

export interface DlqAlert {
  rule: string;
  /** Which condition fired: count, growth or oldest_age. */
  condition: 'count' | 'growth' | 'oldest_age';
  value: number;
  threshold: number;
  type: string | null;
  message: string;
  at: number;
}

export interface DlqWatcherOptions {
  rules?: DlqAlertRule[];
  policies?: RedrivePolicy[];
  /** How often rules are checked (default 30 s). */
  intervalMs?: number;
  /**
   * The lease that elects the one active watcher among the processes running it (default 'leader:dlq-watcher').
   * Watchers with different rules or policies need different leases, or only one of them runs.
   */
  lease?: string;
}

export interface DlqPass {
  alerts: DlqAlert[];
  redriven: Record<string, string[]>;
  /** false: another process holds the watcher's lease, so this one checked nothing. */
  leading: boolean;
}

export interface DlqWatcherDeps {
  store: Store;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
}

export class DlqWatcher {
  private readonly rules: DlqAlertRule[];
  private readonly policies: RedrivePolicy[];
  private readonly intervalMs: number;
  private readonly firedAt = new Map<string, number>();
  /** Firings whose webhook has not answered yet, by rule: delivered again at the next checks while the rule holds. */
  private readonly undelivered = new Map<string, DlqAlert>();
  private readonly lastRun = new Map<string, number>();
  private readonly elector: Elector;
  private started = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  /** Aborted by stop() or a lost lease: a redrive under way stops after its current batch (the rest stays dead for the next run). */
  private stopping = new AbortController();

  constructor(
    private readonly deps: DlqWatcherDeps,
    opts: DlqWatcherOptions,
  ) {
    this.rules = (opts.rules ?? []).map(checkRule);
    this.policies = (opts.policies ?? []).map(checkPolicy);
    this.intervalMs = opts.intervalMs ?? 30_000;
    if (!(Number.isInteger(this.intervalMs) && this.intervalMs >= 10)) throw new ValidationError('intervalMs', 'must be an integer of at least 10 ms');
    const lease = opts.lease ?? 'leader:dlq-watcher';
    if (typeof lease !== 'string' || lease.length === 0 || lease.length > 200) throw new ValidationError('dlq.lease', 'must be 1-200 characters');
    this.elector = new Elector(deps.store.coordination, { lease, now: deps.now, logger: deps.logger });
    // A lost lease ends a redrive under way after its batch: the next holder may start the same policy.
    this.elector.onLeadership(
      () => {},
      () => this.interrupt(),
    );
  }

  get lease(): string {
    return this.elector.lease;
  }

  /**
   * One pass over every rule and due policy, if this watcher holds its lease (tests call it directly). The firing and redrive state lives in the holder: a new holder fires the
   * rules that hold once more and runs its policies on its first pass.
   */
  async runOnce(): Promise<DlqPass> {
    if (!(await this.lead())) return { alerts: [], redriven: {}, leading: false };
    const now = this.deps.now();
    const alerts: DlqAlert[] = [];
    for (const rule of this.rules) {
      const fired = await this.check(rule, now);
      const key = rule.name;
      if (!fired) {
        this.firedAt.delete(key);
        this.undelivered.delete(key);
        continue;
      }
      const last = this.firedAt.get(key);
      if (last == null || now - last >= (rule.repeatMs ?? 3600_000)) {
        this.firedAt.set(key, now);
        alerts.push(fired);
        this.announce(fired);
        if (rule.webhook) this.undelivered.set(key, fired);
      }
      const pending = this.undelivered.get(key);
      if (pending) await this.deliver(rule, pending);
    }
    const redriven: Record<string, string[]> = {};
    const { signal } = this.stopping;
    for (const p of this.policies) {
      if (signal.aborted) break;
      const last = this.lastRun.get(p.name);
      if (last != null && now - last < p.everyMs) continue;
      this.lastRun.set(p.name, now);
      const reasons = new Set(p.reasons ?? ['exhausted', 'timeout']);
      const cutoff = now - (p.minDeadMs ?? 0);
      redriven[p.name] = await redriveMatching(this.deps, {
        types: p.type ? [p.type] : undefined,
        fingerprint: p.fingerprint,
        match: (j) => reasons.has(String(j.deadReason)) && (j.finishedAt ?? 0) <= cutoff,
        perSecond: p.perSecond ?? 10,
        limit: p.maxPerRun ?? 100,
        actor: `auto-redrive:policy:${p.name}`,
        signal,
      });
    }
    return { alerts, redriven, leading: true };
  }

  /**
   * Not leading: one election round now rather than at the elector's next (a pass called at once after start(),
   * or after a long pause). A round beside the elector's own is harmless: the store lets one acquisition win.
   */
  private async lead(): Promise<boolean> {
    if (this.elector.isLeader) return true;
    await this.elector.runOnce();
    return this.elector.isLeader;
  }

  private interrupt(): void {
    const stopping = this.stopping;
    this.stopping = new AbortController();
    stopping.abort();
  }

  private async check(rule: DlqAlertRule, now: number): Promise<DlqAlert | null> {
    const since = now - (rule.growth?.withinMs ?? 0);
    const c = await this.deps.store.backlog.deadCounts(since, rule.type);
    const base = { rule: rule.name, type: rule.type ?? null, at: now };
    const scope = rule.type ? `dead ${rule.type} jobs` : 'dead jobs';
    if (rule.count != null && c.total >= rule.count) {
      return { ...base, condition: 'count', value: c.total, threshold: rule.count, message: `${c.total} ${scope} (alert at ${rule.count})` };
    }
    if (rule.growth && c.recent >= rule.growth.count) {
      return {
        ...base,
        condition: 'growth',
        value: c.recent,
        threshold: rule.growth.count,
        message: `${c.recent} ${scope} in the last ${rule.growth.withinMs} ms (alert at ${rule.growth.count})`,
      };
    }
    if (rule.oldestAgeMs != null && c.oldestAt != null && now - c.oldestAt >= rule.oldestAgeMs) {
      const age = now - c.oldestAt;
      return { ...base, condition: 'oldest_age', value: age, threshold: rule.oldestAgeMs, message: `the oldest of the ${scope} has been dead ${age} ms (alert at ${rule.oldestAgeMs})` };
    }
    return null;
  }

  private announce(alert: DlqAlert) {
    this.deps.logger.error({ rule: alert.rule, condition: alert.condition, value: alert.value, threshold: alert.threshold }, `DLQ alert: ${alert.message}`);
    this.deps.events.emit('dlq:alert', alert);
  }

  private async deliver(rule: DlqAlertRule, alert: DlqAlert) {
    if (!rule.webhook) return;
    try {
      const res = await fetch(rule.webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'rebound', kind: 'dlq_alert', ...alert }),
        signal: AbortSignal.timeout(5000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
      this.undelivered.delete(rule.name);
    } catch (error) {
      this.deps.logger.warn({ rule: rule.name, err: (error as Error).message }, 'DLQ alert webhook failed; will retry at the next check');
      this.deps.events.emit('worker:error', { workerId: '-', error, during: `dlq alert webhook ${rule.name}` });
    }
  }

  start(): this {
    if (this.started) return this;
    this.started = true;
    this.elector.start();
    const tick = () => {
      this.timer = setTimeout(() => {
        this.running = this.runOnce()
          .catch((error) => this.deps.events.emit('worker:error', { workerId: '-', error, during: 'dlq watch' }))
          .finally(() => {
            this.running = null;
            if (this.timer) tick();
          });
      }, this.intervalMs);
      this.timer.unref();
    };
    tick();
    return this;
  }

  /**
   * Safe when never started, and safe twice. A redrive under way stops after its current batch: waiting for all of
   * it (maxPerRun at perSecond: 500 at 0.5 a second is over 16 minutes) held `rebound.close()` and a SIGTERM's drain.
   */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.interrupt();
    await this.running;
    // Given up at once, so another process's watcher takes over without waiting for the lease to lapse.
    await this.elector.stop();
  }
}

function checkRule(r: DlqAlertRule, i: number): DlqAlertRule {
  const field = `dlq.rules[${i}]`;
  if (!r || typeof r.name !== 'string' || !r.name) throw new ValidationError(`${field}.name`, 'give each rule a name');
  if (r.count == null && r.growth == null && r.oldestAgeMs == null) throw new ValidationError(field, 'give count, growth or oldestAgeMs');
  if (r.count != null && !(Number.isInteger(r.count) && r.count > 0)) throw new ValidationError(`${field}.count`, 'must be a positive integer');
  if (r.growth && !(Number.isInteger(r.growth.count) && r.growth.count > 0 && r.growth.withinMs > 0)) {
    throw new ValidationError(`${field}.growth`, 'must be { count: positive integer, withinMs: positive }');
  }
  if (r.webhook != null) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(r.webhook).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new ValidationError(`${field}.webhook`, 'must be an http(s) URL');
  }
  return r;
}

function checkPolicy(p: RedrivePolicy, i: number): RedrivePolicy {
  const field = `dlq.policies[${i}]`;
  if (!p || typeof p.name !== 'string' || !p.name) throw new ValidationError(`${field}.name`, 'give each policy a name');
  if (!(Number.isInteger(p.everyMs) && p.everyMs >= 10)) throw new ValidationError(`${field}.everyMs`, 'must be an integer of at least 10 ms');
  if (p.perSecond != null && !(typeof p.perSecond === 'number' && p.perSecond > 0 && p.perSecond <= 100_000)) {
    throw new ValidationError(`${field}.perSecond`, 'must be a number above 0 and at most 100000 (0.5 is one job every 2 s)');
  }
  if (p.maxPerRun != null && !(Number.isInteger(p.maxPerRun) && p.maxPerRun > 0)) throw new ValidationError(`${field}.maxPerRun`, 'must be a positive integer');
  if (p.minDeadMs != null && !(Number.isInteger(p.minDeadMs) && p.minDeadMs >= 0)) throw new ValidationError(`${field}.minDeadMs`, 'must be whole milliseconds, 0 or more');
  return p;
}
