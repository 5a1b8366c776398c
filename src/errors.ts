/**
 * One error hierarchy. Every error has a stable string `code`; users catch the
 * subclasses. Classification of handler errors uses properties (`permanent`,
 * `retryAfterMs`), never `instanceof`, so errors from another copy of this
 * module (a job file loaded separately) are classified the same way.
 */
export class ReboundError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: names the field and says how to fix it. Nothing was stored. */
export class ValidationError extends ReboundError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('validation', `${field}: ${message}`, options);
    this.field = field;
  }
}

export class IdempotencyConflictError extends ReboundError {
  readonly key: string;
  readonly existingJobId: string;
  constructor(key: string, existingJobId: string) {
    super(
      'idempotency_conflict',
      `idempotency key "${key}" was first used with a different payload (job ${existingJobId}); use a new key for a different payload`,
    );
    this.key = key;
    this.existingJobId = existingJobId;
  }
}

export class JobNotFoundError extends ReboundError {
  constructor(id: string) {
    super('not_found', `job ${id} does not exist`);
  }
}

export class InvalidStateError extends ReboundError {
  constructor(message: string) {
    super('invalid_state', message);
  }
}

export class ConfigError extends ReboundError {
  constructor(message: string) {
    super('config', message);
  }
}

/** Thrown by a handler: do not retry, send the job to the dead letter queue. */
export class PermanentError extends ReboundError {
  readonly permanent = true;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'permanent', message, options);
  }
}

/** Thrown by a handler: retry, optionally not before `retryAfterMs`. */
export class RetryableError extends ReboundError {
  readonly retryAfterMs?: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number; code?: string }) {
    super(options?.code ?? 'retryable', message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The attempt ran past `timeoutMs`. Transient: it is retried. */
export class TimeoutError extends ReboundError {
  constructor(ms: number) {
    super('timeout', `the attempt ran past its timeout of ${ms} ms`);
  }
}

/**
 * Thrown (by the engine's own layers, or a handler) to put the job back to
 * sleep until `runAt` without charging an attempt: a durable timer, a wait for
 * a signal or for children, a closed gate. The job holds no worker and no lease meanwhile.
 */
export class Snooze extends ReboundError {
  readonly runAt: number;
  readonly reason: string;
  constructor(runAt: number, reason: string) {
    super('snooze', `snoozed until ${new Date(runAt).toISOString()}: ${reason}`);
    this.runAt = runAt;
    this.reason = reason;
  }
}

/** The executor lost its lease: another worker may own the job now. */
export class LeaseLostError extends ReboundError {
  constructor(jobId: string) {
    super('lease_lost', `the lease on job ${jobId} was lost; this executor may no longer change the job`);
  }
}

/** The worker is shutting down; the job is released without charging an attempt. */
export class ShutdownError extends ReboundError {
  constructor() {
    super('shutdown', 'the worker is shutting down');
  }
}
