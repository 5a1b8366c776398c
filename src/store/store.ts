/**
 * The store seam. Every store (SQLite, PostgreSQL) implements these domain
 * operations and passes the conformance suite in test/conformance/.
 * The engine never sees SQL. Every operation takes `now` (epoch ms) from the
 * caller's clock, so tests drive time instead of sleeping.
 */
import type { TokenStore } from './tokens.ts';
import type { CoordinationStore } from './coordination.ts';
import type { BreakerStore } from './breakers.ts';
import type { BacklogStore } from './backlog.ts';
import type { LimitStore } from './limits.ts';
import type { VisibilityStore } from './visibility.ts';
import type { ErrorInfo, Job, JobEvent, JobFilter, JobState, Json, NewJob, DeadReason } from '../job.ts';
import type { WorkflowStore } from './workflows.ts';
import type { HandoffStore } from './handoff.ts';

export interface InsertOptions {
  allOrNothing?: boolean;
}

export interface InsertedJob {
  job: Job;
  /** false: the idempotency key already named this job; nothing was inserted. */
  inserted: boolean;
  /** The stored payload hash of the existing job when `inserted` is false. */
  payloadHash: string;
}

/**
 * An insert fed in parts (`Store.openBulkInsert`): the database stores each part as it arrives, while the
 * caller builds the next. Nothing is stored until `end()` resolves, and then every part is.
 */
export interface BulkInsert {
  /** Sends jobs number `offset` to `offset + jobs.length - 1` of the batch; returns what they become once stored. */
  write(jobs: NewJob[], offset: number): InsertedJob[];
  /** Stores every job written, all or none; rejects with the database's error if it refused any. */
  end(): Promise<void>;
  /** Stores none of the jobs written, and frees the connection. */
  abort(reason: Error): Promise<void>;
}

export interface ClaimParams {
  /** Claim only jobs to be run alone (suspects of a shared crash), or only the others (default). */
  isolated?: boolean;
  workerId: string;
  queues: string[];
  types: string[];
  limit: number;
  leaseMs: number;
  now: number;
}

/** A lease held by an executor: the job id and the token of its claim. */
export interface LeaseRef {
  id: string;
  token: number;
}

/** One lease as a key: the job id alone is not one, since a job is leased again (a new token) on each attempt. */
export const leaseKey = (id: string | number, token: number): string => `${id}:${token}`;

export interface Completion extends LeaseRef {
  result: Json | null;
  /** The final state to record (default 'completed'; a compensated workflow ends 'compensated'). */
  state?: 'completed' | 'compensated';
}

export type FailOutcome =
  | { kind: 'retry'; runAt: number; delayMs: number; error: ErrorInfo }
  | { kind: 'dead'; reason: DeadReason; error: ErrorInfo };

export interface FailParams extends LeaseRef {
  outcome: FailOutcome;
  now: number;
}

/**
 * What becomes of a job whose lease expired: the engine decides, the store applies.
 * `crashes` is the job's new crash count; `isolate` makes it claimable only by a worker running nothing else.
 */
export type RescueDecision =
  | { kind: 'requeue'; error: ErrorInfo; crashes: number; isolate: boolean }
  | { kind: 'dead'; reason: DeadReason; error: ErrorInfo; crashes: number };

export interface RescueParams {
  now: number;
  limit: number;
  /**
   * Called with each expired job as stored. `alone`: no other job runs under its lease owner, and none
   * of the owner's was rescued since this one started, so the crash can be blamed on this job
   * (alone-on-worker.ts).
   */
  decide: (job: Job, crash: { alone: boolean }) => RescueDecision;
}

export interface RescueResult {
  /** Jobs put back in the queue. */
  requeued: string[];
  /** Jobs sent to the dead letter queue (poison, or out of attempts). */
  dead: string[];
}

export interface Selection {
  ids?: string[];
  type?: string;
  fingerprint?: string;
  all?: boolean;
}

export type StateCounts = Partial<Record<JobState, number>>;

/** Runs `fn` once per notification that work is available on a queue. */
export type WakeListener = (queue: string) => void;

/** A worker's ears for hand-offs (store/handoff.ts), on stores that have them. */
export interface HandoffListener {
  /**
   * Once per job handed to a worker; every listener hears of every hand-off. `job`: the job as handed,
   * when the notification could carry it (else the worker reads it by id).
   */
  handed(jobId: string, workerId: string, job?: Job): void;
  /** The listening connection, for the worker's offer (`JobOffer.listener`); null while it reconnects. */
  listening(connection: number | null): void;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Leases (leader election, locks), schedules and retention counts (store/coordination.ts). */
  readonly coordination: CoordinationStore;
  /** Workflow runs, their step history and signals (src/store/workflows.ts). */
  readonly workflows: WorkflowStore;
  /** Circuit breakers shared by every process (store/breakers.ts). */
  readonly breakers: BreakerStore;
  /** Queue depth and lag counts (store/backlog.ts). */
  readonly backlog: BacklogStore;
  /** Rate-limit buckets and concurrency slots shared by every process (store/limits.ts). */
  readonly limits: LimitStore;
  /** API tokens of the operator surface (store/tokens.ts). */
  readonly tokens: TokenStore;
  /** Audit trail and stats rollups (store/visibility.ts). */
  readonly visibility: VisibilityStore;
  /** Idle workers' offers, where the store can hand a new job straight to one (store/handoff.ts); absent on SQLite. */
  readonly handoff?: HandoffStore;
  /** Applies pending migrations. Safe to call many times and from many processes at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /**
   * Inserts jobs in one round trip. A job whose idempotency key already names
   * a live job is not inserted; the existing job is returned instead.
   * `tx` is a caller's PostgreSQL client, so the insert commits with the caller's transaction.
   * With `allOrNothing`, a job whose key a stored job holds with another payload makes the whole insert
   * store nothing and throw IdempotencyConflictError (the first such job's); without it, that job alone is
   * not stored and its answer shows the existing job (a group commit of independent enqueues needs that).
   */
  insertJobs(jobs: NewJob[], now: number, tx?: unknown, opts?: InsertOptions): Promise<InsertedJob[]>;
  /**
   * Optional: opens an insert of `count` new jobs without idempotency or ordering keys, outside any caller's
   * transaction, that takes them in parts (PostgreSQL: one COPY). null when `count` is better inserted at once.
   */
  openBulkInsert?(count: number, now: number): Promise<BulkInsert> | null;

  /** Claims up to `limit` due jobs, in priority, run-at, id order, each with a fresh lease token. */
  claimJobs(p: ClaimParams): Promise<Job[]>;
  /**
   * Completes jobs still leased with the given tokens. Returns, for each item in order, whether it was
   * accepted (false: its lease was lost, and nothing of it was written).
   */
  completeJobs(items: Completion[], now: number): Promise<boolean[]>;
  /** Records a failed attempt (retry later or dead). false: the lease was lost. */
  failJob(p: FailParams): Promise<boolean>;
  /** Extends leases still held. Returns the leases still held. */
  heartbeatJobs(items: LeaseRef[], leaseMs: number, now: number): Promise<LeaseRef[]>;
  /** Puts a leased job back to sleep until `runAt` without charging the attempt. false: the lease was lost. */
  snoozeJob(p: LeaseRef & { runAt: number; reason: string; now: number }): Promise<boolean>;
  /** Puts leased jobs back without charging an attempt (graceful shutdown). */
  releaseJobs(items: LeaseRef[], now: number): Promise<string[]>;
  /**
   * Records that a stale executor tried to finish an attempt it no longer owned. If the attempt was cancelled,
   * ends its lease too, which frees its ordering key (the executor has let go of the job).
   */
  recordLeaseLost(item: LeaseRef & { attempt: number; worker: string }, now: number): Promise<void>;
  /** Returns jobs whose lease expired to the queue (or to the dead letter queue). */
  rescueExpiredLeases(p: RescueParams): Promise<RescueResult>;

  getJob(id: string): Promise<Job | null>;
  listJobs(filter: JobFilter): Promise<Job[]>;
  countJobs(filter: { state?: JobState; type?: string; queue?: string }): Promise<number>;
  countByState(): Promise<StateCounts>;
  /** Stored events, in the order they happened (the happy path is derived from the job row). */
  getEvents(jobId: string): Promise<JobEvent[]>;
  /** Whether a due job waits to be run alone (see ClaimParams.isolated) and an isolated claim could take it now (the head of its ordering key). */
  hasIsolatedJobs(queues: string[], types: string[], now: number): Promise<boolean>;
  /** The earliest run-at among waiting jobs of these queues, or null. */
  nextRunAt(queues: string[], types: string[]): Promise<number | null>;

  getOnce(jobId: string, key: string): Promise<{ value: Json } | null>;
  /** Records a once-result unless one is recorded for the job and key; returns the recorded one, which counts. */
  putOnce(jobId: string, key: string, value: Json, now: number): Promise<Json>;

  /**
   * Cancels a job that has not finished, and in the same transaction its unfinished descendants (children
   * spawned by a workflow, theirs, and so on); a workflow run among them is marked cancelled. Null when the
   * job does not exist or has finished.
   */
  cancelJob(id: string, actor: string, now: number): Promise<CancelledJobs | null>;
  redriveDead(sel: Selection, actor: string, now: number): Promise<string[]>;
  purgeDead(sel: Selection): Promise<number>;

  /**
   * Listens for new work. Returns a function that stops listening. A store that starts listening
   * later than the call (a LISTEN connection) calls the listener with '*' once it listens, so work
   * that arrived in between is not missed. `handoff` hears of jobs handed to workers (store/handoff.ts).
   */
  onWake(listener: WakeListener, handoff?: HandoffListener): Promise<() => Promise<void>>;
}

/** What a cancel ended: the job asked for, and its descendants that had not finished. */
export interface CancelledJobs {
  job: Job;
  descendants: Job[];
}
