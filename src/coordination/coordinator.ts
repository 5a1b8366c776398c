/**
 * The coordinator: a long-lived service that a worker process (or the server)
 * runs. Every instance takes part in the election; the leader alone fires due
 * schedules and prunes, and every such write carries its term, which the store
 * checks. A refused write (StaleTermError) makes it step down at once.
 *
 * The lease rescuer stays in every worker (runtime/lease-rescuer.ts): it is
 * idempotent and each rescue is fenced by the job's own lease token, so it
 * needs no leader, and rescue keeps working while leadership changes hands.
 */
import { checkCoordinatorOptions, DEFAULT_MISFIRE_GRACE_MS, DEFAULT_TICK_MS } from '../config/coordinator-options.ts';
import type { JobDefinition, Logger } from '../define.ts';
import { buildNewJob } from '../engine/enqueue-input.ts';
import { StaleTermError } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Fence, FireResult, ScheduleRecord } from '../store/coordination.ts';
import type { Store } from '../store/store.ts';
import { Elector, type ElectorOptions, type Leadership } from './leader.ts';
import { Pruner, type PruneReport, type RetentionPolicy } from './retention.ts';
import { fireKey, firstFireAfter, jitterFor, planFires, type ScheduleDefinition } from './schedules.ts';

export interface CoordinatorOptions extends Pick<ElectorOptions, 'lease' | 'leaseMs' | 'safetyMs' | 'holder'> {
  /** Longest sleep between passes while leader (default 1000 ms; shorter when a fire is due sooner). */
  tickMs?: number;
  /** A fire time later than this behind `now` is a misfire, handled by the schedule's policy (default 60 s). */
  misfireGraceMs?: number;
  /** How often the leader prunes (default 60 s). */
  pruneIntervalMs?: number;
  /** Default retention for types without their own `retention`. */
  retention?: Partial<RetentionPolicy>;
  pruneBatchSize?: number;
  /** Audit segments sealed longer ago than this are pruned, leaving a verifiable anchor (default: kept forever). */
  auditRetentionMs?: number;
  /** Per-minute stats rollups older than this are deleted (default 31 days, the longest /api/stats window). */
  statsRetentionMs?: number;
}

export interface CoordinatorDeps {
  store: Store;
  defs: ReadonlyMap<string, JobDefinition>;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
  /** Schedules defined in code; the leader stores them (create or redefine) at the start of each term. */
  schedules: () => ScheduleDefinition[];
}

export interface PassReport {
  leader: boolean;
  term: number | null;
  fired: (FireResult & { schedule: string })[];
  pruned: PruneReport | null;
}

export class Coordinator {
  readonly elector: Elector;
  private readonly pruner: Pruner;
  private readonly tickMs: number;
  private readonly graceMs: number;
  private readonly pruneIntervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private started = false;
  private syncedTerm: number | null = null;
  private lastPruneAt = -Infinity;
  private nextDue: number | null = null;
  private tick: ((delay: number) => void) | null = null;

  constructor(
    private readonly deps: CoordinatorDeps,
    opts: CoordinatorOptions = {},
  ) {
    opts = checkCoordinatorOptions(opts);
    this.elector = new Elector(deps.store.coordination, { ...opts, now: deps.now, logger: deps.logger });
    this.pruner = new Pruner(deps.store.coordination, deps.defs, {
      retention: opts.retention,
      batchSize: opts.pruneBatchSize,
      visibility: deps.store.visibility,
      auditMs: opts.auditRetentionMs,
      statsMs: opts.statsRetentionMs,
    });
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.graceMs = opts.misfireGraceMs ?? DEFAULT_MISFIRE_GRACE_MS;
    this.pruneIntervalMs = opts.pruneIntervalMs ?? 60_000;
    this.elector.onLeadership(
      (l) => {
        this.deps.events.emit('leadership:changed', { lease: l.lease, term: l.token, holder: l.holder, leader: true });
        this.kick();
      },
      (l, reason) => {
        this.syncedTerm = null;
        this.deps.events.emit('leadership:changed', { lease: l.lease, term: l.token, holder: l.holder, leader: false, reason });
      },
    );
  }

  /**
   * One maintenance pass as the current leader (nothing when not leading):
   * store code schedules once per term, fire due schedules, prune when due.
   */
  async runOnce(): Promise<PassReport> {
    const l = this.elector.leadership;
    if (!l) return { leader: false, term: null, fired: [], pruned: null };
    return this.passWith(l);
  }

  /** A pass with the given fence, trusted or not: the store has the last word. Exposed for tests of stale leaders. */
  async passWith(fence: Fence): Promise<PassReport> {
    try {
      if (this.syncedTerm !== fence.token) {
        await this.syncCodeSchedules(fence);
        this.syncedTerm = fence.token;
      }
      const fired = await this.fireDue(fence);
      let pruned: PruneReport | null = null;
      const now = this.deps.now();
      if (now - this.lastPruneAt >= this.pruneIntervalMs) {
        pruned = await this.pruner.runOnce(fence, now);
        this.lastPruneAt = now;
        for (const [state, byType] of Object.entries(pruned.jobs)) {
          this.deps.events.emit('retention:pruned', { state, counts: byType, term: fence.token });
        }
        const auditError = pruned.audit?.error;
        if (auditError) {
          this.deps.logger.error({ err: auditError.message }, 'audit trail not pruned: its oldest segments do not verify');
          this.deps.events.emit('worker:error', { workerId: this.elector.holder, error: auditError, during: 'audit prune' });
        }
      }
      return { leader: true, term: fence.token, fired, pruned };
    } catch (err) {
      if (err instanceof StaleTermError) {
        this.deps.logger.warn({ lease: fence.lease, term: fence.token }, 'fenced write refused: stale term');
        if (this.elector.leadership?.token === fence.token || !this.elector.leadership) await this.elector.stepDown('fenced write refused');
      }
      throw err;
    }
  }

  private async syncCodeSchedules(fence: Fence) {
    const now = this.deps.now();
    for (const def of this.deps.schedules()) {
      const { change } = await this.deps.store.coordination.upsertSchedule(def, firstFireAfter(def, now), now, fence);
      if (change !== 'unchanged') {
        this.deps.events.emit('operator:action', { actor: 'code', action: `schedule.${change === 'created' ? 'add' : 'update'}`, target: `schedule:${def.name}`, details: { cron: def.cron, tz: def.tz, type: def.type } });
      }
    }
  }

  /** Fires every due schedule with the fence. Each fire time yields one job, whatever the number of instances. */
  async fireDue(fence: Fence): Promise<(FireResult & { schedule: string })[]> {
    const now = this.deps.now();
    const schedules = await this.deps.store.coordination.listSchedules();
    const out: (FireResult & { schedule: string })[] = [];
    let nextDue: number | null = null;
    for (const s of schedules) {
      if (s.paused || s.nextFireAt == null) continue;
      if (s.nextFireAt > now) {
        nextDue = Math.min(nextDue ?? Infinity, s.nextFireAt);
        continue;
      }
      let results: FireResult[];
      try {
        results = await this.fire(s, fence, now);
      } catch (error) {
        if (error instanceof StaleTermError) throw error;
        // One schedule that cannot be planned or stored (a zone or pattern this process's Node cannot read, say)
        // must not stop the schedules after it, nor pruning: reported, and tried again on the next pass.
        this.deps.logger.error({ schedule: s.name, err: (error as Error).message }, 'schedule not fired: its pass failed');
        this.deps.events.emit('worker:error', { workerId: this.elector.holder, error, during: `schedule ${s.name}` });
        continue;
      }
      out.push(...results.map((r) => ({ ...r, schedule: s.name })));
      const after = await this.deps.store.coordination.getSchedule(s.name);
      if (after?.nextFireAt != null && !after.paused) nextDue = Math.min(nextDue ?? Infinity, after.nextFireAt);
    }
    this.nextDue = nextDue;
    return out;
  }

  private async fire(s: ScheduleRecord, fence: Fence, now: number): Promise<FireResult[]> {
    const plan = planFires(s, now, this.graceMs);
    const fires = [];
    for (const fireAt of plan.fire) {
      try {
        const job = buildNewJob(
          s.type,
          s.payload,
          { runAt: fireAt + jitterFor(s.name, fireAt, s.jitterMs), idempotencyKey: fireKey(s.name, fireAt) },
          this.deps.defs.get(s.type),
          now,
        );
        fires.push({ fireAt, job });
      } catch (error) {
        // A payload the type's schema refuses: report it; the fire time passes without a job.
        this.deps.logger.error({ schedule: s.name, fire_at: fireAt, err: (error as Error).message }, 'schedule fire time passed without a job: its job was refused');
        this.deps.events.emit('worker:error', { workerId: this.elector.holder, error, during: `schedule ${s.name}` });
      }
    }
    const results = await this.deps.store.coordination.fireSchedule({
      fence,
      name: s.name,
      version: s.version,
      fires,
      lastFireAt: plan.lastFireAt,
      nextFireAt: plan.nextFireAt,
      now,
    });
    for (const r of results) {
      if (r.created) this.deps.events.emit('schedule:fired', { schedule: s.name, fireAt: r.fireAt, jobId: r.jobId, term: fence.token });
    }
    if (plan.skipped > 0) this.deps.logger.warn({ schedule: s.name, skipped: plan.skipped, misfire: s.misfire }, 'missed fire times skipped');
    return results;
  }

  start(): this {
    if (this.started) return this;
    this.started = true;
    this.elector.start();
    const tick = (this.tick = (delay: number) => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.running = this.runOnce()
          .catch((error) => {
            if (!(error instanceof StaleTermError)) this.deps.events.emit('worker:error', { workerId: this.elector.holder, error, during: 'coordinator' });
          })
          .finally(() => {
            this.running = null;
            if (!this.started) return;
            const untilDue = this.nextDue == null ? this.tickMs : this.nextDue - this.deps.now();
            tick(Math.max(10, Math.min(this.tickMs, untilDue)));
          });
      }, delay);
      this.timer.unref();
    });
    tick(0);
    return this;
  }

  /** Runs a pass now (a new leadership), unless one is running. */
  private kick() {
    if (this.started && !this.running) this.tick?.(0);
  }

  get leadership(): Leadership | null {
    return this.elector.leadership;
  }

  /** Stops the passes and gives up leadership. Safe twice and when never started. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await this.elector.stop();
  }
}
