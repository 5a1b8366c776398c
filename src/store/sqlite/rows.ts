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
