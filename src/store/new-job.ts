/** What every store does with a job it has just inserted. */
import type { Job, JobState, NewJob } from '../job.ts';

/** A job just inserted from `j`: the store gave it its id and state. */
export function newJob(j: NewJob, id: number, state: JobState, createdAt: number): Job {
  return {
    id: String(id),
    type: j.type,
    queue: j.queue,
    payload: j.payload,
    priority: j.priority,
    runAt: j.runAt,
    state,
    attempt: 0,
    maxAttempts: j.maxAttempts,
    crashCount: 0,
    isolated: false,
    leaseOwner: null,
    leaseToken: 0,
    leaseExpiresAt: null,
    idempotencyKey: j.idempotencyKey,
    result: null,
    lastError: null,
    deadReason: null,
    parentId: j.parentId,
    createdAt,
    startedAt: null,
    finishedAt: null,
    traceContext: j.traceContext ?? null,
  };
}

/**
 * The payload hash to store: it is only ever compared for jobs with an
 * idempotency key (a same-key enqueue with another payload is refused), so
 * other jobs store an empty one and their rows stay smaller.
 */
export function storedPayloadHash(j: NewJob): string {
  return j.idempotencyKey == null ? '' : j.payloadHash;
}
