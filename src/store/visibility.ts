/**
 * Storage for the visibility capability: the audit trail (raw entries, then a
 * hash chain sealed in segments) and the per-minute stats rollups. Domain
 * operations only; `now` comes from the caller; every value is a bound parameter.
 */
import type { Json } from '../job.ts';

/** An audit entry as written on the hot path: not yet part of the chain. */
export interface AuditRecord {
  at: number;
  actor: string;
  action: string;
  target: string;
  details: Json | null;
}

export interface AuditEntry extends AuditRecord {
  id: string;
  /** Position in the chain (1, 2, 3... with no gaps), given when the entry is sealed; null before. */
  seq: number | null;
  prevHash: string | null;
  hash: string | null;
}

export interface AuditSegment {
  id: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** The hash of the segment's last entry. */
  headHash: string;
  /** The head hash of the segment before (the genesis hash for the first). */
  prevHeadHash: string;
  sealedAt: number;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface SealParams {
  limit: number;
  now: number;
  /** Computes the chain links of `entries` (in id order) after `head`. Pure: the store applies what it returns. */
  chain: (head: ChainHead | null, entries: AuditEntry[]) => { seq: number; prevHash: string; hash: string }[];
}

export interface AuditTotals {
  /** Entries with action `job.submit` (new jobs, not deduplicated enqueues). */
  submitted: number;
  /** Sum of `details.count` over entries whose action is one of `countActions`, by action. */
  counted: Record<string, number>;
}

/** One minute of one job type, as the stats recorder flushes it (counts are added to what is stored). */
export interface StatsBucket {
  minute: number;
  type: string;
  outcomes: Record<string, number>;
  /** kind ('run' | 'pickup') → histogram bucket index → count */
  latency: { kind: string; bucket: number; count: number }[];
  errors: { fingerprint: string; kind: string; name: string; message: string; count: number }[];
}

export interface StatsRows {
  outcomes: { minute: number; type: string; outcome: string; count: number }[];
  latency: { type: string; kind: string; bucket: number; count: number }[];
  errors: { type: string; fingerprint: string; kind: string; name: string; message: string; count: number }[];
}

export interface VisibilityStore {
  appendAudit(records: AuditRecord[]): Promise<void>;
  /** Chains up to `limit` unsealed entries into one new segment. One sealer at a time, across processes. null: nothing to seal. */
  sealAudit(p: SealParams): Promise<AuditSegment | null>;
  /** Sealed entries with seq > afterSeq (and <= throughSeq, when given), in seq order. */
  readAudit(p: { afterSeq: number; limit: number; throughSeq?: number }): Promise<AuditEntry[]>;
  listAuditSegments(): Promise<AuditSegment[]>;
  countUnsealedAudit(): Promise<number>;
  auditTotals(countActions: string[]): Promise<AuditTotals>;

  /** Adds each bucket's counts to the stored rollups, in one transaction. */
  addStats(buckets: StatsBucket[]): Promise<void>;
  /** Deletes rollups of minutes before `beforeMinute`. Returns the rows deleted. */
  pruneStats(beforeMinute: number): Promise<number>;
  /** Rollups of the minutes in [fromMinute, toMinute]. */
  readStats(p: { fromMinute: number; toMinute: number; type?: string }): Promise<StatsRows>;

  /**
   * The earliest run-at among jobs due by `now` and not claimed, or null: available ones and scheduled ones
   * (a delayed job or a retry is claimed from `scheduled` once due, never moved to `available`).
   */
  oldestDueRunAt(now: number): Promise<number | null>;
}
