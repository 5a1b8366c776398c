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

/** The lease that holds a slot: a slot whose job is no longer running under this token is free again. */
export interface SlotHolder {
  jobId: string;
  token: number;
}

export interface SlotRequest {
  key: string;
  max: number;
  holders: SlotHolder[];
  now: number;
}

/**
 * Each call is one locked write, however many tokens or slots it moves: a process takes what its starting jobs
 * need together (runtime/limits.ts), so processes sharing a key do not queue behind its lock once per job.
 */
export interface LimitStore {
  /**
   * Takes up to `count` tokens from the key's bucket (created full): `taken` of them, and when fewer than asked,
   * `waitMs` until the next token.
   */
  takeTokens(r: TokenRequest, count: number): Promise<{ taken: number; waitMs: number }>;
  /**
   * Gives slots to the holders in the order given while fewer than `max` live leases hold one for this key
   * (a holder that already has one keeps it, renewed): returns the job ids that got one.
   */
  acquireSlots(r: SlotRequest): Promise<string[]>;
  /**
   * Frees the slots these holders took. A slot is freed only under the token that took it: a handler that ran
   * past its timeout or lost its lease returns after its job was claimed again, and must not free the slot the
   * new attempt holds (one did, and a concurrency limit of 1 ran two jobs).
   */
  releaseSlots(key: string, holders: SlotHolder[]): Promise<void>;
  /** Slots held now, by key (live leases only). */
  slotsInUse(): Promise<Record<string, number>>;
}

/** Tokens in a bucket after refilling from `updatedAt` to `now`, capped at `max`. */
export function refill(tokens: number, updatedAt: number, r: TokenRequest): number {
  return Math.min(r.max, tokens + (Math.max(0, r.now - updatedAt) * r.max) / r.perMs);
}

/** Takes up to `count` whole tokens from `tokens` (already refilled), and says how long until the next one if short. */
export function take(tokens: number, r: TokenRequest, count: number): { tokens: number; taken: number; waitMs: number } {
  const taken = Math.max(0, Math.min(count, Math.floor(tokens)));
  const left = tokens - taken;
  return { tokens: left, taken, waitMs: taken < count ? Math.ceil(((1 - left) * r.perMs) / r.max) : 0 };
}
