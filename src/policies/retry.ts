/**
 * Retry policy: how long to wait before the next attempt, and whether an
 * error deserves another attempt at all.
 */
import { MAX_DURATION_MS } from '../config/options.ts';

export interface RetryPolicy {
  maxAttempts: number;
  backoff: 'exponential' | 'linear' | 'fixed';
  baseMs: number;
  maxMs: number;
  jitter: 'full' | 'equal' | 'none';
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  backoff: 'exponential',
  baseMs: 1000,
  maxMs: 5 * 60_000,
  jitter: 'full',
};

/** The delay before the attempt after `attempt` (1-based) failed. `random` is in [0, 1). */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, attempt);
  // 2^1024 is Infinity, and 0 * Infinity is NaN: the exponent stops where any base already passes any maxMs.
  const raw =
    policy.backoff === 'exponential'
      ? policy.baseMs * 2 ** Math.min(n - 1, 64)
      : policy.backoff === 'linear'
        ? policy.baseMs * n
        : policy.baseMs;
  const capped = Math.min(policy.maxMs, raw);
  if (policy.jitter === 'full') return Math.floor(random() * capped);
  if (policy.jitter === 'equal') return Math.floor(capped / 2 + random() * (capped / 2));
  return Math.floor(capped);
}

export type ErrorClass = 'transient' | 'permanent';

export interface Classification {
  kind: ErrorClass | 'timeout';
  /** Honour the error's own wait, when it gives one. */
  retryAfterMs?: number;
}

/** User hook: return 'permanent' or 'transient' to decide, or undefined to fall through. */
export type Classifier = (err: unknown) => ErrorClass | undefined;

export function classifyError(err: unknown, classify?: Classifier): Classification {
  const e = (err ?? {}) as { permanent?: unknown; retryAfterMs?: unknown; code?: unknown };
  const decided = classify?.(err);
  if (decided) return { kind: decided, retryAfterMs: retryAfter(e.retryAfterMs) };
  if (e.permanent === true) return { kind: 'permanent' };
  if (e.code === 'timeout') return { kind: 'timeout' };
  return { kind: 'transient', retryAfterMs: retryAfter(e.retryAfterMs) };
}

/**
 * The error's own wait, in whole milliseconds (the stores keep times as integers: PostgreSQL refused a run-at of
 * `now + 250.5`, and the job stayed running until its lease lapsed), at most MAX_DURATION_MS (ten years).
 */
const retryAfter = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(MAX_DURATION_MS, Math.ceil(v)) : undefined);
