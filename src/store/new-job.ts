/** What every store does with a job it has just inserted. */
import { IdempotencyConflictError } from '../errors.ts';
import type { Job, JobState, NewJob } from '../job.ts';
import type { InsertedJob } from './store.ts';

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

/** The job's idempotency key is held by a job with a different payload: nothing was stored for it. */
export function isKeyConflict(job: NewJob, inserted: InsertedJob): boolean {
  return !inserted.inserted && inserted.payloadHash !== job.payloadHash;
}

/** An `allOrNothing` insert's refusal: the first job whose key a stored job holds with another payload, as an error. */
export function firstKeyConflict(jobs: NewJob[], inserted: InsertedJob[]): IdempotencyConflictError | null {
  const i = inserted.findIndex((r, i) => isKeyConflict(jobs[i], r));
  return i < 0 ? null : new IdempotencyConflictError(jobs[i].idempotencyKey!, inserted[i].job.id);
}
