import type { Job, JobEvent, JobState } from '../../job.ts';

export interface JobRow {
  id: number;
  type: string;
  queue: string;
  payload: string;
  payload_hash: string;
  priority: number;
  run_at: number;
  state: string;
  attempt: number;
  max_attempts: number;
  crash_count: number;
  isolate: number;
  lease_owner: string | null;
  lease_token: number;
  lease_expires_at: number | null;
  idempotency_key: string | null;
  result: string | null;
  last_error: string | null;
  dead_reason: string | null;
  parent_id: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  trace_context?: string | null;
  ordering_key?: string | null;
  ordering_seq?: number | null;
}

const parse = (text: string | null) => (text == null ? null : JSON.parse(text));

export function toJob(r: JobRow): Job {
  return {
    id: String(r.id),
    type: r.type,
    queue: r.queue,
    payload: parse(r.payload),
    priority: r.priority,
    runAt: r.run_at,
    state: r.state as JobState,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    crashCount: r.crash_count,
    isolated: r.isolate === 1,
    leaseOwner: r.lease_owner,
    leaseToken: r.lease_token,
    leaseExpiresAt: r.lease_expires_at,
    idempotencyKey: r.idempotency_key,
    result: parse(r.result),
    lastError: parse(r.last_error),
    deadReason: r.dead_reason,
    parentId: r.parent_id == null ? null : String(r.parent_id),
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    traceContext: r.trace_context ?? null,
    ...(r.ordering_key != null && { orderingKey: r.ordering_key, orderingSeq: r.ordering_seq ?? null }),
  };
}

/**
 * What a claim reads: the columns a claim does not set itself, read as
 * arrays (better-sqlite3 builds an object per row property by property, which
 * costs more than the claim's own work).
 */
export const CLAIMED_COLUMNS = `id, type, queue, payload, priority, run_at, attempt, max_attempts, crash_count, isolate,
  lease_token, idempotency_key, last_error, parent_id, created_at, trace_context, ordering_key, ordering_seq`;

type ClaimedRow = [
  id: number, type: string, queue: string, payload: string, priority: number, runAt: number, attempt: number,
  maxAttempts: number, crashCount: number, isolate: number, leaseToken: number, idempotencyKey: string | null,
  lastError: string | null, parentId: number | null, createdAt: number, traceContext: string | null,
  orderingKey: string | null, orderingSeq: number | null,
];

/**
 * A job just claimed: running, leased to `owner` until `leaseExpiresAt`, started `now`. The row was read in the
 * claim's transaction before its update, so the attempt and the lease token are one less than the claim made them.
 */
export function claimedJob(row: unknown[], owner: string, now: number, leaseExpiresAt: number): Job {
  // Indexed reads, not array destructuring: destructuring runs the iterator protocol, eighteen steps per job
  // in the interpreter, and made this V8's costliest compile of a fresh worker's drain (13-76 ms).
  const r = row as ClaimedRow;
  const parentId = r[13];
  const job: Job = {
    id: String(r[0]),
    type: r[1],
    queue: r[2],
    payload: JSON.parse(r[3]),
    priority: r[4],
    runAt: r[5],
    state: 'running',
    attempt: r[6] + 1,
    maxAttempts: r[7],
    crashCount: r[8],
    isolated: r[9] === 1,
    leaseOwner: owner,
    leaseToken: r[10] + 1,
    leaseExpiresAt,
    idempotencyKey: r[11],
    result: null,
    lastError: parse(r[12]),
    deadReason: null,
    parentId: parentId == null ? null : String(parentId),
    createdAt: r[14],
    startedAt: now,
    finishedAt: null,
    traceContext: r[15],
  };
  if (r[16] != null) {
    job.orderingKey = r[16];
    job.orderingSeq = r[17];
  }
  return job;
}

export interface EventRow {
  id: number;
  at: number;
  kind: string;
  attempt: number;
  worker: string | null;
  data: string | null;
}

export function toEvent(r: EventRow): JobEvent {
  return { seq: r.id, at: r.at, kind: r.kind, attempt: r.attempt, worker: r.worker, data: parse(r.data) ?? undefined };
}
