/** The shapes of jobs and their history, shared by the engine and every store. */

export const JOB_STATES = ['scheduled', 'available', 'running', 'completed', 'dead', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: readonly JobState[] = ['completed', 'dead', 'cancelled'];

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
  /** Times an attempt ended with its worker gone (lease expired). */
  crashCount: number;
  leaseOwner: string | null;
  /** Fencing token: increases with every claim. Only the current holder may change the job. */
  leaseToken: number;
  leaseExpiresAt: number | null;
  idempotencyKey: string | null;
  result: Json | null;
  lastError: ErrorInfo | null;
  deadReason: DeadReason | null;
  parentId: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A job the store has not seen yet. */
export interface NewJob {
  type: string;
  queue: string;
  payload: Json;
  payloadHash: string;
  priority: number;
  runAt: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  /** How long the idempotency key is kept after the job finishes. */
  keyTtlMs: number;
  parentId: string | null;
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
