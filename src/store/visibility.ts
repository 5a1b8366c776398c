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
  /** Entries with action `job.submit` (new jobs, not deduplicated enqueues), pruned ones included. */
  submitted: number;
  /** Sum of `details.count` over entries whose action is one of `countActions`, by action, pruned ones included. */
  counted: Record<string, number>;
}

/** Per action, over pruned entries: how many there were and the sum of their `details.count`. */
export type AuditActionTotals = Record<string, { entries: number; count: number }>;

/** Where the kept audit trail starts after a prune: its last pruned entry, and what reconcile needs of the pruned ones. */
export interface AuditAnchor {
  seq: number;
  hash: string;
  /** Over every entry pruned so far (cumulative). */
  totals: AuditActionTotals;
  prunedAt: number;
}

export interface AuditPruneParams {
  /** Whole segments sealed before this time are pruned, oldest first. */
  sealedBefore: number;
  /** At most this many entries, in whole segments (at least one segment). */
  limit: number;
  now: number;
  /**
   * Checks the entries about to be pruned (in seq order) and their segments against the current anchor and
   * returns the new one; throws when they do not verify, and nothing is pruned. Pure: the store applies it.
   */
  anchor: (from: AuditAnchor | null, entries: AuditEntry[], segments: AuditSegment[], now: number) => AuditAnchor;
  /** The `audit.prune` entry that records the new anchor, appended (unsealed) in the prune's transaction. */
  record: (from: AuditAnchor | null, to: AuditAnchor, pruned: { entries: number; segments: number }) => AuditRecord;
}

export interface AuditPruned {
  anchor: AuditAnchor;
  entries: number;
  segments: number;
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
  /** Totals over the kept entries and the anchor's, read at one instant (a prune moves counts between them). */
  auditTotals(countActions: string[]): Promise<AuditTotals>;
  /** The anchor of the pruned part of the trail; null while nothing was pruned. */
  auditAnchor(): Promise<AuditAnchor | null>;
  /**
   * Prunes one batch of whole sealed segments from the start of the chain, in one transaction taken under the
   * sealer's lock (so a sealer or a second pruner waits, then sees the new anchor). null: nothing old enough.
   */
  pruneAudit(p: AuditPruneParams): Promise<AuditPruned | null>;
  /** The newest sealed entries with seq <= throughSeq that are not submissions (`job.submit*`), newest first. */
  readOperatorAudit(p: { throughSeq: number; limit: number }): Promise<AuditEntry[]>;
  /** Unsealed entries with this action, in id order. */
  readUnsealedAudit(p: { action: string; limit: number }): Promise<AuditEntry[]>;

  /** Adds each bucket's counts to the stored rollups, in one transaction. */
  addStats(buckets: StatsBucket[]): Promise<void>;
  /**
   * Deletes rollups of minutes before `beforeMinute`, oldest first: at most `limit` rows per table, or without a
   * limit all of them in bounded rounds (one transaction each). Returns the rows deleted.
   */
  pruneStats(beforeMinute: number, limit?: number): Promise<number>;
  /** Rollups of the minutes in [fromMinute, toMinute]. */
  readStats(p: { fromMinute: number; toMinute: number; type?: string }): Promise<StatsRows>;

  /**
   * The earliest run-at among jobs due by `now` and not claimed, or null: available ones and scheduled ones
   * (a delayed job or a retry is claimed from `scheduled` once due, never moved to `available`).
   */
  oldestDueRunAt(now: number): Promise<number | null>;
}
