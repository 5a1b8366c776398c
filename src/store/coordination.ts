/**
 * Storage for coordination: leases (leader election and distributed locks,
 * one table, one monotonically increasing token per name), schedules with
 * their fire ledger, and retention counts. Every write made by the leader
 * carries a fence (the leadership lease's name and token); the store checks,
 * in the same transaction as the write, that the token is still the current
 * one and unexpired, and throws StaleTermError otherwise.
 */
import type { JobState, Json, NewJob } from '../job.ts';

export interface Lease {
  name: string;
  holder: string;
  /** Increases with every acquisition of this name: a fencing token. */
  token: number;
  expiresAt: number;
}

/** Proof of leadership that a write carries. */
export interface Fence {
  lease: string;
  token: number;
}

export type MisfirePolicy = 'skip' | 'once' | { all: number };

export interface ScheduleSpec {
  name: string;
  cron: string;
  tz: string;
  type: string;
  payload: Json;
  misfire: MisfirePolicy;
  jitterMs: number;
  /** 'code': defined with defineSchedule and synced by the coordinator; 'runtime': added through the CLI or API. */
  source: 'code' | 'runtime';
}

export interface ScheduleRecord extends ScheduleSpec {
  paused: boolean;
  /**
   * Changed by every change of definition or pause state, drawn from one counter for all schedules (so a schedule
   * removed and added again never repeats a version of its namesake); a fire pass that read another version writes nothing.
   */
  version: number;
  nextFireAt: number | null;
  lastFireAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface FireInput {
  fireAt: number;
  job: NewJob;
}

export interface FireResult {
  fireAt: number;
  jobId: string;
  /** false: this fire time had already produced its job (another instance, or an earlier pass). */
  created: boolean;
}

export interface FireRecord {
  schedule: string;
  fireAt: number;
  jobId: string;
  term: number;
  firedAt: number;
}

export interface PruneJobsParams {
  fence: Fence;
  state: Extract<JobState, 'completed' | 'compensated' | 'dead' | 'cancelled'>;
  finishedBefore: number;
  /** Only these types (a per-type policy). */
  onlyTypes?: string[];
  /** Every type but these (the default policy, where types have their own). */
  exceptTypes?: string[];
  limit: number;
  now: number;
}

export interface PrunedCount {
  type: string;
  state: string;
  count: number;
  lastPrunedAt: number;
}

export interface CoordinationStore {
  /** Takes the lease if it is free or expired (token + 1). null: someone else holds it. */
  acquireLease(p: { name: string; holder: string; ttlMs: number; now: number }): Promise<Lease | null>;
  /** Extends a lease still held with this token and not yet expired. null: lost. */
  renewLease(p: { name: string; token: number; ttlMs: number; now: number }): Promise<Lease | null>;
  /** Gives the lease up (the token counter is kept). false: it was not held with this token. */
  releaseLease(p: { name: string; token: number; now: number }): Promise<boolean>;
  getLease(name: string): Promise<Lease | null>;

  /**
   * Creates or redefines a schedule. Pause state and the fire cursor survive an unchanged definition.
   * With a fence (the leader storing code-defined schedules), a stale term is refused.
   */
  upsertSchedule(spec: ScheduleSpec, nextFireAt: number | null, now: number, fence?: Fence): Promise<{ schedule: ScheduleRecord; change: 'created' | 'updated' | 'unchanged' }>;
  getSchedule(name: string): Promise<ScheduleRecord | null>;
  listSchedules(): Promise<ScheduleRecord[]>;
  removeSchedule(name: string): Promise<boolean>;
  /**
   * Pauses or resumes, keeping the cursor: on resume, fire times that passed (before or during the pause) are
   * planned as after any downtime (the grace period, then the misfire policy). A schedule already in that
   * state is left as it is (`changed: false`, no version bump). null: no such schedule.
   */
  setSchedulePaused(name: string, paused: boolean, now: number): Promise<{ schedule: ScheduleRecord; changed: boolean } | null>;
  /**
   * Fenced. Records each fire time once (unique on schedule and fire time) and
   * enqueues its job in the same transaction, then moves the cursor forward.
   * Does nothing (returns []) if the schedule is gone or its version changed.
   */
  fireSchedule(p: {
    fence: Fence;
    name: string;
    version: number;
    fires: FireInput[];
    lastFireAt: number | null;
    nextFireAt: number | null;
    now: number;
  }): Promise<FireResult[]>;
  listFires(name: string, limit: number): Promise<FireRecord[]>;

  /**
   * Fenced. Deletes up to `limit` finished jobs (and their events and once-results), counting them by type.
   * A job whose parent is not finished is kept: a workflow waiting in `join` reads it. A dead job holding its
   * ordering key (orderingOnDead 'wait') is kept: the key's later jobs wait for it.
   */
  pruneJobs(p: PruneJobsParams): Promise<Record<string, number>>;
  /** Fenced. Frees up to `limit` idempotency keys past their TTL. */
  pruneExpiredKeys(p: { fence: Fence; now: number; limit: number }): Promise<number>;
  /** Fenced. Deletes up to `limit` fire records older than `before` (fire cursors never go back, so they are no longer needed). */
  pruneFires(p: { fence: Fence; before: number; limit: number; now: number }): Promise<number>;
  /** Jobs removed by retention so far, by type and state: what an audit reconcile adds back. */
  prunedCounts(): Promise<PrunedCount[]>;
}
