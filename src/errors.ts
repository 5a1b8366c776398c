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

/** A signal sent to a job that is not a workflow: only workflows (`defineWorkflow`) receive signals. Nothing was stored. */
export class NotAWorkflowError extends InvalidStateError {
  readonly jobId: string;
  readonly jobType: string;
  constructor(jobId: string, jobType: string) {
    super(`job ${jobId} (type "${jobType}") is not a workflow: only workflows (defineWorkflow) receive signals; the signal was not stored`);
    this.jobId = jobId;
    this.jobType = jobType;
  }
}

export class ConfigError extends ReboundError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('config', message, options);
  }
}

/**
 * The store could not be reached: its server refused or dropped the connection, timed out, or was starting or
 * shutting down; another process held SQLite's write lock too long. Not a mistake in the configuration: the
 * same call may succeed later (the CLI exits 1, not 2, so a supervisor restarts a worker that met it).
 */
export class StoreUnavailableError extends ReboundError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
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

  /**
   * A handler throws a Snooze to mean "not now", so it must be recognised even
   * when it comes from another copy of this module (a job file that resolves
   * its own rebound): `instanceof Snooze` checks the code and `runAt`, not the class.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    const v = value as { code?: unknown; runAt?: unknown };
    return value instanceof Error && v.code === 'snooze' && typeof v.runAt === 'number';
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

/** A circuit breaker refused the call: the service behind it is failing. Wait `retryAfterMs`; a job is put back to sleep without charging an attempt. */
export class BreakerOpenError extends ReboundError {
  readonly breaker: string;
  readonly retryAfterMs: number;
  constructor(breaker: string, state: string, retryAfterMs: number) {
    super('breaker_open', `circuit breaker "${breaker}" is ${state}; try again in ${Math.ceil(retryAfterMs)} ms`);
    this.breaker = breaker;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The queue is at its maximum depth: enqueue later (after `retryAfterMs`), or ask enqueue to wait for room. */
export class QueueFullError extends ReboundError {
  readonly queue: string;
  readonly depth: number;
  readonly maxDepth: number;
  readonly retryAfterMs: number;
  constructor(queue: string, depth: number, maxDepth: number, retryAfterMs: number) {
    super(
      'queue_full',
      `queue "${queue}" is full (${depth} waiting jobs, max ${maxDepth}); retry after ${Math.ceil(retryAfterMs)} ms or pass waitForRoomMs`,
    );
    this.queue = queue;
    this.depth = depth;
    this.maxDepth = maxDepth;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A leader-only write carried a term (fencing token) that is no longer the current one: leadership passed to another. */
export class StaleTermError extends ReboundError {
  readonly lease: string;
  readonly token: number;
  constructor(lease: string, token: number) {
    super('stale_term', `lease "${lease}" is no longer held with token ${token}; the write was refused (step down)`);
    this.lease = lease;
    this.token = token;
  }
}

/** withLock could not take the lock within its wait time: another holder has it. */
export class LockUnavailableError extends ReboundError {
  readonly lock: string;
  constructor(lock: string, holder: string | null) {
    super('lock_unavailable', `lock "${lock}" is held${holder ? ` by ${holder}` : ''}; try again later or pass a longer waitMs`);
    this.lock = lock;
  }
}

/**
 * A workflow's code no longer matches the history of an in-flight run: the
 * position `position` was recorded as `recorded` but the code now asks for `requested`.
 * Permanent: replaying further would act on the wrong results.
 */
export class DeterminismError extends ReboundError {
  readonly permanent = true;
  readonly step: string;
  readonly recorded: string;
  readonly position: number;
  constructor(workflow: string, jobId: string, position: number, recorded: string, requested: string) {
    super(
      'determinism',
      `workflow ${workflow} (job ${jobId}): step "${requested}" at position ${position} does not match the recorded history, ` +
        `which has "${recorded}" there; the code changed under an in-flight run: keep the old step, or branch on ctx.version (docs/workflows.md)`,
    );
    this.step = requested;
    this.recorded = recorded;
    this.position = position;
  }
}

/** `ctx.transition(to)` asked for a move the workflow's declared states do not allow. */
export class IllegalTransitionError extends ReboundError {
  readonly permanent = true;
  readonly from: string | null;
  readonly to: string;
  constructor(workflow: string, from: string | null, to: string, allowed: string[]) {
    super(
      'illegal_transition',
      `workflow ${workflow}: cannot move from "${from}" to "${to}"; allowed from "${from}": ${allowed.length ? allowed.map((s) => `"${s}"`).join(', ') : 'none (final state)'}`,
    );
    this.from = from;
    this.to = to;
  }
}

/** A workflow step failed for good (a permanent error, or its own attempts ran out). */
export class StepFailedError extends ReboundError {
  readonly permanent = true;
  readonly step: string;
  readonly attempts: number;
  constructor(step: string, attempts: number, cause: unknown) {
    const message = cause instanceof Error ? cause.message : typeof (cause as { message?: unknown })?.message === 'string' ? (cause as { message: string }).message : String(cause);
    super('step_failed', `step "${step}" failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${message}`, { cause });
    this.step = step;
    this.attempts = attempts;
  }
}

/** `ctx.waitFor(name, { timeoutMs })`: no signal came in time. Catch it to take another path. */
export class SignalTimeoutError extends ReboundError {
  readonly permanent = true;
  readonly signalName: string;
  constructor(name: string, timeoutMs: number) {
    super('signal_timeout', `no signal "${name}" arrived within ${timeoutMs} ms`);
    this.signalName = name;
  }
}

/**
 * A workflow failed for good and one of its compensations failed for good too.
 * The job goes to the dead letter queue with reason `compensation_failed`;
 * the message says what was undone and what was not.
 */
export class CompensationFailedError extends ReboundError {
  readonly permanent = true;
  readonly deadReason = 'compensation_failed';
  readonly undone: string[];
  readonly notUndone: string[];
  constructor(step: string, cause: unknown, undone: string[], notUndone: string[], original: string) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      'compensation_failed',
      `compensation of step "${step}" failed: ${why}; undone: [${undone.join(', ')}]; not undone: [${notUndone.join(', ')}]; the workflow had failed with: ${original}`,
      { cause },
    );
    this.undone = undone;
    this.notUndone = notUndone;
  }
}
