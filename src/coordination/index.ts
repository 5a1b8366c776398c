/**
 * What a Rebound client offers for coordination (`rebound.coordination`):
 * the schedule API the CLI and the HTTP server call, the coordinator service,
 * leadership callbacks and distributed locks.
 */
import { checkCoordinatorOptions } from '../config/coordinator-options.ts';
import { ReboundError, ValidationError } from '../errors.ts';
import type { Rebound } from '../rebound.ts';
import type { PrunedCount, ScheduleRecord } from '../store/coordination.ts';
import { Coordinator, type CoordinatorOptions } from './coordinator.ts';
import type { LeadershipStart, LeadershipStop } from './leader.ts';
import { holdsLock, withLock, type HeldLock, type LockOptions } from './locks.ts';
import { defineSchedule, firstFireAfter, type ScheduleDefinition, type ScheduleOptions } from './schedules.ts';

export class ScheduleNotFoundError extends ReboundError {
  constructor(name: string) {
    super('not_found', `schedule "${name}" does not exist; see \`rebound schedule list\``);
  }
}

export class Coordination {
  private readonly codeSchedules = new Map<string, ScheduleDefinition>();
  private coordinatorInstance: Coordinator | null = null;
  private coordinatorOptions: CoordinatorOptions = {};

  constructor(private readonly rebound: Rebound) {}

  private get store() {
    return this.rebound.store.coordination;
  }

  /** Registers schedules defined in code; the leader stores them at the start of its term. */
  define(...defs: ScheduleDefinition[]): this {
    for (const d of defs) this.codeSchedules.set(d.name, d);
    return this;
  }

  /**
   * The coordinator service of this client, created on first use with these options. Later calls may repeat
   * options or leave them out; an option that differs from the first call's is refused, not ignored.
   */
  coordinator(opts: CoordinatorOptions = {}): Coordinator {
    if (this.coordinatorInstance) {
      const field = differingOption(this.coordinatorOptions, checkCoordinatorOptions(opts));
      if (field) {
        throw new ValidationError(
          `options.${field}`,
          `the coordinator of this client was already created (by an earlier start(), coordinator() or onLeadership()) with ${show(field, this.coordinatorOptions)}, not ${show(field, opts)}; ` +
            'pass the options to the first of these calls, before onLeadership()',
        );
      }
      return this.coordinatorInstance;
    }
    this.coordinatorOptions = checkCoordinatorOptions(opts);
    if (opts.statsRetentionMs !== undefined) this.rebound.visibility.stats?.keepAtLeast(opts.statsRetentionMs);
    this.coordinatorInstance = new Coordinator(
      {
        store: this.rebound.store,
        defs: this.rebound.definitions,
        events: this.rebound.events,
        logger: this.rebound.logger,
        now: this.rebound.now,
        schedules: () => [...this.codeSchedules.values()],
      },
      opts,
    );
    return this.coordinatorInstance;
  }

  /** Starts the coordinator: this process joins the election and, while leader, fires schedules and prunes. */
  start(opts: CoordinatorOptions = {}): Coordinator {
    return this.coordinator(opts).start();
  }

  async stop(): Promise<void> {
    await this.coordinatorInstance?.stop();
  }

  /**
   * Runs `start` whenever this process becomes the leader, `stop` when it stops
   * being one. Starts the coordinator if it is not running. `l.token` is the term.
   */
  onLeadership(start: LeadershipStart, stop?: LeadershipStop): () => void {
    const c = this.coordinator();
    const off = c.elector.onLeadership(start, stop);
    c.start();
    return off;
  }

  withLock<T>(name: string, fn: (lock: HeldLock) => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
    return withLock(this.store, name, fn, { ...opts, now: this.rebound.now });
  }

  holdsLock(name: string, token: number): Promise<boolean> {
    return holdsLock(this.store, name, token, this.rebound.now());
  }

  /** Adds a schedule at run time, or redefines one. Stored at once; the leader fires it. */
  async addSchedule(name: string, options: ScheduleOptions, opts: { actor?: string } = {}): Promise<ScheduleRecord> {
    const def = defineSchedule(name, options, 'runtime', this.rebound.definitions.get(options?.type));
    const now = this.rebound.now();
    const { schedule, change } = await this.store.upsertSchedule(def, firstFireAfter(def, now), now);
    if (change !== 'unchanged') {
      this.rebound.events.emit('operator:action', {
        actor: opts.actor ?? 'library',
        action: change === 'created' ? 'schedule.add' : 'schedule.update',
        target: `schedule:${name}`,
        details: { cron: def.cron, tz: def.tz, type: def.type, misfire: def.misfire as never },
      });
    }
    return schedule;
  }

  listSchedules(): Promise<ScheduleRecord[]> {
    return this.store.listSchedules();
  }

  async getSchedule(name: string): Promise<ScheduleRecord> {
    const s = await this.store.getSchedule(name);
    if (!s) throw new ScheduleNotFoundError(name);
    return s;
  }

  async removeSchedule(name: string, opts: { actor?: string } = {}): Promise<void> {
    if (!(await this.store.removeSchedule(name))) throw new ScheduleNotFoundError(name);
    this.rebound.events.emit('operator:action', { actor: opts.actor ?? 'library', action: 'schedule.remove', target: `schedule:${name}` });
  }

  /** Pauses a schedule: no fire time passes into a job until it is resumed. */
  async pauseSchedule(name: string, opts: { actor?: string } = {}): Promise<ScheduleRecord> {
    return this.setPaused(name, true, opts.actor ?? 'library');
  }

  /**
   * Resumes a schedule where it stopped: a fire time still within the grace period fires as usual; older ones,
   * those passed while paused included, follow its misfire policy. Resuming a schedule that is not paused changes nothing.
   */
  async resumeSchedule(name: string, opts: { actor?: string } = {}): Promise<ScheduleRecord> {
    return this.setPaused(name, false, opts.actor ?? 'library');
  }

  private async setPaused(name: string, paused: boolean, actor: string): Promise<ScheduleRecord> {
    if (typeof name !== 'string' || !name) throw new ValidationError('name', 'must name a schedule');
    // The cursor is kept: a fresh one ("after now") dropped a fire time that was due but not yet fired.
    const result = await this.store.setSchedulePaused(name, paused, this.rebound.now());
    if (!result) throw new ScheduleNotFoundError(name);
    if (result.changed) {
      this.rebound.events.emit('operator:action', { actor, action: paused ? 'schedule.pause' : 'schedule.resume', target: `schedule:${name}` });
    }
    return result.schedule;
  }

  /** Jobs deleted by retention, by type and state (for audit reconciliation). */
  prunedCounts(): Promise<PrunedCount[]> {
    return this.store.prunedCounts();
  }
}

/** The first option (`retention.*` for an age) that `asked` sets to something other than `created` did. */
function differingOption(created: CoordinatorOptions, asked: CoordinatorOptions): string | null {
  for (const [key, value] of Object.entries(asked) as [keyof CoordinatorOptions, unknown][]) {
    if (value === undefined) continue;
    if (key === 'retention') {
      for (const [age, ms] of Object.entries(value as object)) {
        if (ms !== undefined && created.retention?.[age as keyof typeof created.retention] !== ms) return `retention.${age}`;
      }
    } else if (created[key] !== value) return key;
  }
  return null;
}

function show(field: string, opts: CoordinatorOptions): string {
  const value = field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], opts);
  return value === undefined ? `${field} left to its default` : `${field} ${JSON.stringify(value)}`;
}

export { Coordinator, type CoordinatorOptions } from './coordinator.ts';
export { Elector, type ElectorOptions, type Leadership } from './leader.ts';
export { defineSchedule, type ScheduleDefinition, type ScheduleOptions, type MisfirePolicy } from './schedules.ts';
export type { HeldLock, LockOptions } from './locks.ts';
export { DEFAULT_RETENTION, Pruner, type RetentionPolicy } from './retention.ts';
export { parseCron } from './cron.ts';
