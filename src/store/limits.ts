/**
 * Rate limits (token buckets) and concurrency limits (slots), kept in the
 * store so they hold across every process and machine, not per process.
 */
export interface TokenRequest {
  key: string;
  /** Bucket size, and tokens added per `perMs`. */
  max: number;
  perMs: number;
  now: number;
}

export interface SlotRequest {
  key: string;
  max: number;
  /** The lease that holds the slot: a slot whose job is no longer running under this token is free again. */
  jobId: string;
  token: number;
  now: number;
}

export interface LimitStore {
  /** Takes one token from the key's bucket (created full). Not taken: `waitMs` until the next token. */
  takeToken(r: TokenRequest): Promise<{ taken: boolean; waitMs: number }>;
  /** Takes a slot if fewer than `max` live leases hold one for this key. */
  acquireSlot(r: SlotRequest): Promise<boolean>;
  releaseSlot(key: string, jobId: string): Promise<void>;
  /** Slots held now, by key (live leases only). */
  slotsInUse(): Promise<Record<string, number>>;
}

/** Tokens in a bucket after refilling from `updatedAt` to `now`, capped at `max`. */
export function refill(tokens: number, updatedAt: number, r: TokenRequest): number {
  return Math.min(r.max, tokens + (Math.max(0, r.now - updatedAt) * r.max) / r.perMs);
}

/** Takes a token from `tokens` (already refilled), or says how long until one is there. */
export function take(tokens: number, r: TokenRequest): { tokens: number; taken: boolean; waitMs: number } {
  if (tokens >= 1) return { tokens: tokens - 1, taken: true, waitMs: 0 };
  return { tokens, taken: false, waitMs: Math.ceil(((1 - tokens) * r.perMs) / r.max) };
}
