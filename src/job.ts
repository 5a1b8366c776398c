/** The shapes of jobs and their history, shared by the engine and every store. */

export const JOB_STATES = ['scheduled', 'available', 'running', 'completed', 'dead', 'cancelled', 'compensated'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** 'compensated': a workflow that failed for good and whose compensations all ran (see docs/workflows.md). */
export const FINAL_STATES: readonly JobState[] = ['completed', 'dead', 'cancelled', 'compensated'];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Why a job is in the dead letter queue. */
export type DeadReason = 'permanent' | 'exhausted' | 'poison' | 'timeout' | (string & {});

/** How an error is recorded: enough to group, search and reproduce it. */
export interface ErrorInfo {
  /** transient | permanent | timeout | lease_lost | poison | ... */
  kind: string;
  name: string;
  code?: string;
  message: string;
  stack?: string;
  fingerprint: string;
  /** A snapshot of the payload with its sensitive paths masked, to reproduce the failure. */
  payload?: Json;
}

export interface Job {
  id: string;
  type: string;
  queue: string;
  payload: Json;
  priority: number;
  runAt: number;
  state: JobState;
  attempt: number;
  maxAttempts: number;
  /** Crashes blamed on this job: its worker died while running it alone. */
  crashCount: number;
  /** Suspect of a shared crash: runs only on a worker running nothing else. */
  isolated: boolean;
  leaseOwner: string | null;
  /** Fencing token: increases with every claim. Only the current holder may change the job. */
  leaseToken: number;
  leaseExpiresAt: number | null;
  idempotencyKey: string | null;
  result: Json | null;
  lastError: ErrorInfo | null;
  deadReason: DeadReason | null;
  parentId: string | null;
  /** Jobs sharing an ordering key run one at a time, in `orderingSeq` order. */
  orderingKey?: string | null;
  orderingSeq?: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The W3C `traceparent` of the span that enqueued the job, or null (observability/tracing.ts). */
  traceContext?: string | null;
}

/** A job the store has not seen yet. */
export interface NewJob {
  type: string;
  queue: string;
  payload: Json;
  /** The payload's JSON text, when the caller has it already (enqueue does). */
  payloadText?: string;
  payloadHash: string;
  priority: number;
  runAt: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  /** How long the idempotency key is kept after the job finishes. */
  keyTtlMs: number;
  parentId: string | null;
  /** The W3C `traceparent` of the enqueuing span, set by the tracing plugin. */
  traceContext?: string | null;
  /** Jobs with the same key run one at a time in enqueue order. */
  orderingKey?: string | null;
  /** When this job dies: 'wait' (later jobs of the key wait until it is redriven or purged) or 'skip'. */
  orderingOnDead?: 'wait' | 'skip';
}

/** One transition in a job's life, in order. */
export interface JobEvent {
  seq: number;
  at: number;
  kind:
    | 'enqueued'
    | 'claimed'
    | 'completed'
    | 'retry_scheduled'
    | 'dead'
    | 'lease_expired'
    | 'lease_lost'
    | 'released'
    | 'snoozed'
    | 'redriven'
    | 'cancelled'
    | (string & {});
  attempt: number;
  worker?: string | null;
  data?: Record<string, Json>;
}

/** One run of the handler, derived from the history. */
export interface Attempt {
  attempt: number;
  worker: string | null;
  startedAt: number;
  endedAt: number | null;
  outcome: 'running' | 'completed' | 'retried' | 'dead' | 'lease_expired' | 'released' | 'snoozed' | 'cancelled';
  error?: ErrorInfo;
}

export interface JobFilter {
  ids?: string[];
  state?: JobState;
  type?: string;
  queue?: string;
  fingerprint?: string;
  limit?: number;
  /** Return jobs with ids below this one (descending pages). */
  beforeId?: string;
}

/**
 * What a handler returns to end its job in a final state other than
 * 'completed': a workflow whose compensations all ran ends 'compensated'.
 */
export interface EndState {
  readonly reboundEndState: 'compensated';
  readonly result: Json;
}

/** Duck-typed, so a job file loaded as a separate module copy is understood the same way. */
export function endStateOf(value: unknown): { state: 'compensated'; result: Json } | null {
  const v = value as Partial<EndState> | null;
  if (typeof v !== 'object' || v === null || v.reboundEndState !== 'compensated') return null;
  return { state: v.reboundEndState, result: (v.result ?? null) as Json };
}

/** A permanent error may name its dead letter reason (a workflow's `compensation_failed`). */
export function deadReasonOf(err: unknown): DeadReason | null {
  const r = (err as { deadReason?: unknown } | null)?.deadReason;
  return typeof r === 'string' && r.length > 0 ? r : null;
}
