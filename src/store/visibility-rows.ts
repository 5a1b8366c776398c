/**
 * The visibility tables' rows as both stores read them (SQLite and PostgreSQL give the same columns), and the
 * store-independent parts of pruning them: which segments a batch takes, the anchor's totals, stats rounds.
 */
import type { AuditAnchor, AuditEntry, AuditSegment, AuditTotals } from './visibility.ts';

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  details: string | null;
  seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

export interface SegmentRow {
  id: number;
  first_seq: number;
  last_seq: number;
  count: number;
  head_hash: string;
  prev_head_hash: string;
  sealed_at: number;
}

export const toAuditEntry = (r: AuditRow): AuditEntry => ({
  id: String(r.id),
  at: Number(r.at),
  actor: r.actor,
  action: r.action,
  target: r.target,
  details: r.details == null ? null : JSON.parse(r.details),
  seq: r.seq == null ? null : Number(r.seq),
  prevHash: r.prev_hash,
  hash: r.hash,
});

export interface AnchorRow {
  seq: number;
  hash: string;
  totals: string;
  pruned_at: number;
}

export const toAnchor = (r: AnchorRow): AuditAnchor => ({
  seq: Number(r.seq),
  hash: r.hash,
  totals: JSON.parse(r.totals),
  prunedAt: Number(r.pruned_at),
});

/** Adds the anchor's pruned totals to the kept entries' (auditTotals on both stores). */
export function withAnchorTotals(live: AuditTotals, anchor: AuditAnchor | null): AuditTotals {
  if (!anchor) return live;
  const counted: Record<string, number> = {};
  for (const [a, n] of Object.entries(live.counted)) counted[a] = n + (anchor.totals[a]?.count ?? 0);
  return { submitted: live.submitted + (anchor.totals['job.submit']?.entries ?? 0), counted };
}

/** The segments a prune batch takes: the leading run sealed before the cutoff, up to `limit` entries (at least one segment). */
export function prunableSegments(oldest: AuditSegment[], sealedBefore: number, limit: number): AuditSegment[] {
  const out: AuditSegment[] = [];
  let entries = 0;
  for (const s of oldest) {
    if (s.sealedAt >= sealedBefore) break;
    if (out.length > 0 && entries + s.count > limit) break;
    out.push(s);
    entries += s.count;
  }
  return out;
}

/** Segments read per prune batch to pick from: more than a batch of 5,000 entries spans at the sealer's smallest. */
export const PRUNE_SEGMENT_SCAN = 1000;

export const toSegment = (r: SegmentRow): AuditSegment => ({
  id: String(r.id),
  firstSeq: Number(r.first_seq),
  lastSeq: Number(r.last_seq),
  count: Number(r.count),
  headHash: r.head_hash,
  prevHeadHash: r.prev_head_hash,
  sealedAt: Number(r.sealed_at),
});

/** Rows per stats table per round of pruneStats without a limit. */
export const STATS_PRUNE_LIMIT = 10_000;
export const STATS_TABLES = ['stats_outcomes', 'stats_latency', 'stats_errors'];

/** One round with a limit; without one, rounds until every table had fewer rows left than a round takes. */
export async function untilDone(round: () => number[] | Promise<number[]>, limit: number | undefined): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await round();
    total += deleted.reduce((a, b) => a + b, 0);
    if (limit !== undefined || deleted.every((n) => n < STATS_PRUNE_LIMIT)) return total;
  }
}
