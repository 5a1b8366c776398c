/**
 * Job definitions: what a job type is called, how it runs, and its policies.
 * `defineJob` checks the options once, at definition time, with clear errors.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { durationMs, firstProblem, fn, intIn, priority, queueName, retentionSchema, retrySchema, timerMs } from './config/options.ts';
import type { Job, Json } from './job.ts';
import { DEFAULT_RETRY, type Classifier, type RetryPolicy } from './policies/retry.ts';
import { toBreakerSpec, type BreakerSpec } from './policies/breaker.ts';
import { limitsSchema, type ConcurrencyLimit, type RateLimit, type RetryBudget } from './policies/limits.ts';

/** Anything with zod's `safeParse` (zod 3 or 4, or a compatible validator). */
export interface PayloadSchema<P> {
  safeParse(data: unknown): { success: true; data: P } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface OnceInfo {
  /** Stable for this job and key across attempts: pass it to the downstream service as its idempotency key. */
  idempotencyKey: string;
}

export interface JobContext {
  jobId: string;
  type: string;
  queue: string;
  attempt: number;
  maxAttempts: number;
  parentId: string | null;
  /** Aborted on timeout, on a lost lease, on cancel and at the end of a shutdown's grace period. */
  signal: AbortSignal;
  /** Renews the lease now (the worker also renews it on its own while the handler runs). */
  heartbeat(): Promise<void>;
  /** Runs `fn` at most once to success per job and key, across all attempts; later calls get the stored result. */
  once<T extends Json | void>(key: string, fn: (info: OnceInfo) => Promise<T> | T): Promise<T>;
  logger: Logger;
  job: Job;
  /**
   * This attempt's fencing token: the job's lease token, which increases with every claim of the job.
   * A downstream system that keeps the highest token seen per job id can refuse a stale executor.
   */
  fencingToken: number;
  /** Guards one call with a named circuit breaker shared by every process: `ctx.breaker('payments').run(() => charge())`. */
  breaker(name: string): BreakerGuard;
}

export interface BreakerGuard {
  /** Runs `fn` if the breaker lets it through (else throws BreakerOpenError) and records its outcome. */
  run<T>(fn: () => Promise<T> | T): Promise<T>;
}

export type Handler<P> = (payload: P, ctx: JobContext) => unknown;

export interface JobOptions<P = any> {
  handler: Handler<P>;
  schema?: PayloadSchema<P>;
  retry?: Partial<RetryPolicy>;
  classify?: Classifier;
  timeoutMs?: number | null;
  leaseMs?: number;
  queue?: string;
  priority?: number;
  /** Attempts that end with the worker gone, beyond which the job is poison (dead letter queue). */
  maxCrashes?: number;
  /** How long an idempotency key is kept after its job finished. */
  keyTtlMs?: number;
  /** How long finished jobs of this type are kept before pruning (defaults: completed 7 days, dead 30, cancelled 7; coordination/retention.ts). */
  retention?: { completedMs?: number; deadMs?: number; cancelledMs?: number };
  /** A circuit breaker (shared across processes) guarding this type: while open, its jobs wait without using attempts. */
  breaker?: string | BreakerSpec;
  /** A token bucket shared by every process: at most `max` starts per `perMs` (per `key`: a name shared with other types, or a function of the payload). */
  rateLimit?: RateLimit<P>;
  /** At most `max` jobs of this type (or `key`) running at once, across every process. */
  concurrency?: ConcurrencyLimit<P>;
  /** Retries at most `ratio` of this type's recent attempts; beyond it, retries are pushed further out. */
  retryBudget?: Partial<RetryBudget>;
  /** Sensitive payload paths (`'card.number'`, `'items.*.email'`): masked in logs, spans, error snapshots and reads (observability/redaction.ts). */
  redact?: string[];
}

export interface JobDefinition<P = any> {
  type: string;
  handler: Handler<P>;
  schema?: PayloadSchema<P>;
  retry: RetryPolicy;
  classify?: Classifier;
  timeoutMs: number | null;
  leaseMs: number;
  queue: string;
  priority: number;
  maxCrashes: number;
  keyTtlMs: number;
  retention?: { completedMs?: number; deadMs?: number; cancelledMs?: number };
  breaker?: BreakerSpec;
  rateLimit?: RateLimit<P>;
  concurrency?: ConcurrencyLimit<P>;
  retryBudget?: Partial<RetryBudget>;
  redact?: string[];
}

export const DEFAULTS = {
  queue: 'default',
  priority: 0,
  leaseMs: 30_000,
  maxCrashes: 3,
  keyTtlMs: 24 * 3600_000,
} as const;

const optionsSchema = z
  .object({
    handler: fn,
    schema: z.object({ safeParse: fn }).loose().optional(),
    retry: retrySchema.optional(),
    classify: fn.optional(),
    // The lease is renewed every third of leaseMs: both are timers.
    timeoutMs: timerMs(1).nullable().optional(),
    leaseMs: timerMs(100).optional(),
    queue: queueName.optional(),
    priority: priority.optional(),
    maxCrashes: intIn(0, 10_000).optional(),
    keyTtlMs: durationMs.optional(),
    retention: retentionSchema.optional(),
    breaker: z.any().optional(),
    ...limitsSchema,
    redact: z.array(z.string().regex(/^[^.]+(\.[^.]+)*$/, 'must be a dot-separated path such as "card.number"')).optional(),
  })
  .strict();

/** Option names, nested ones too, to suggest for a mistyped key (`maxAttempts` is `retry.maxAttempts`). */
const KNOWN_OPTIONS = [
  ...Object.keys(optionsSchema.shape),
  ...Object.keys(retrySchema.shape).map((k) => `retry.${k}`),
  ...Object.keys(retentionSchema.shape).map((k) => `retention.${k}`),
];

export const TYPE_PATTERN = /^[A-Za-z0-9_.:\-/]{1,128}$/;

export function defineJob<P = any>(type: string, options: JobOptions<P>): JobDefinition<P> {
  if (!TYPE_PATTERN.test(type)) {
    throw new ValidationError('type', `"${type}" must be 1-128 letters, digits or _ . : - /`);
  }
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const { field, message } = firstProblem(parsed.error, `defineJob("${type}")`, KNOWN_OPTIONS);
    throw new ValidationError(field, message);
  }
  return {
    type,
    handler: options.handler,
    schema: options.schema,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    classify: options.classify,
    timeoutMs: options.timeoutMs ?? null,
    leaseMs: options.leaseMs ?? DEFAULTS.leaseMs,
    queue: options.queue ?? DEFAULTS.queue,
    priority: options.priority ?? DEFAULTS.priority,
    maxCrashes: options.maxCrashes ?? DEFAULTS.maxCrashes,
    keyTtlMs: options.keyTtlMs ?? DEFAULTS.keyTtlMs,
    ...(options.retention ? { retention: { ...options.retention } } : {}),
    ...(options.breaker !== undefined && { breaker: toBreakerSpec(options.breaker, `defineJob("${type}").breaker`) }),
    ...(options.rateLimit && { rateLimit: options.rateLimit }),
    ...(options.concurrency && { concurrency: options.concurrency }),
    ...(options.retryBudget && { retryBudget: options.retryBudget }),
    ...(options.redact?.length ? { redact: [...options.redact] } : {}),
  };
}

/** Accepts definitions from `defineJob`, or plain option objects keyed by type (a jobs file's default export). */
export function toDefinitions(input: JobDefinition[] | Record<string, JobOptions | JobDefinition>): JobDefinition[] {
  // A definition carries its type, which is not an option of defineJob.
  const options = (d: JobOptions | JobDefinition) => (d && typeof d === 'object' && 'type' in d ? (({ type: _, ...rest }) => rest)(d) : d);
  if (Array.isArray(input)) return input.map((d) => defineJob(d?.type, options(d)));
  return Object.entries(input).map(([type, d]) => defineJob(type, options(d)));
}
