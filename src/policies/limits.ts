/**
 * The shapes of a job type's flow limits: a token-bucket rate limit and a
 * concurrency limit (both enforced through the store, across processes), and
 * a retry budget (retries at most a share of recent attempts).
 */
import { z } from 'zod';

/** A limit key: a name (shared by every type that uses it) or a function of the payload (per customer, per tenant...). */
export type LimitKey<P> = string | ((payload: P) => string);

export interface RateLimit<P = any> {
  /** Bucket size: at most `max` starts at once after a quiet spell, and `max` more per `perMs`. */
  max: number;
  perMs: number;
  /** Default: the job type. */
  key?: LimitKey<P>;
}

export interface ConcurrencyLimit<P = any> {
  max: number;
  /** Default: the job type. */
  key?: LimitKey<P>;
}

export interface RetryBudget {
  /** Retries may be at most this share of the type's attempts in the window (default 0.2). */
  ratio: number;
  /** Retries always allowed per window, however few the attempts (default 10). */
  minRetries: number;
  windowMs: number;
  /** Beyond the budget, a retry waits at least this long (default: the window). */
  deferMs?: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudget = { ratio: 0.2, minRetries: 10, windowMs: 60_000 };

const key = z.union([z.string().min(1).max(200), z.custom<(p: unknown) => string>((v) => typeof v === 'function', 'must be a string or a function')]);

/** The largest concurrency max both stores can hold. */
export const MAX_SLOTS = 2_147_483_647;

/** Spread into defineJob's options schema. */
export const limitsSchema = {
  rateLimit: z.object({ max: z.number().int().positive(), perMs: z.number().int().positive(), key: key.optional() }).strict().optional(),
  // PostgreSQL counts slots in a 32-bit int (acquire_concurrency_slots): a larger max failed every attempt there.
  concurrency: z.object({ max: z.number().int().positive().max(MAX_SLOTS, `must be at most ${MAX_SLOTS}`), key: key.optional() }).strict().optional(),
  retryBudget: z
    .object({
      ratio: z.number().min(0).max(1).optional(),
      minRetries: z.number().int().nonnegative().optional(),
      windowMs: z.number().int().min(1000).optional(),
      deferMs: z.number().int().nonnegative().optional(),
    })
    .strict()
    .optional(),
};

/** The store key of a limit: `rate:<key>` / `conc:<key>`, the key defaulting to `type:<type>`. */
export function limitKey<P>(kind: 'rate' | 'conc', type: string, k: LimitKey<P> | undefined, payload: P): string {
  const name = k == null ? `type:${type}` : typeof k === 'function' ? `fn:${String(k(payload))}` : `key:${k}`;
  return `${kind}:${name}`.slice(0, 300);
}
