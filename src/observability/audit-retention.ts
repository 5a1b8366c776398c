/**
 * Retention for the visibility tables: the audit trail, pruned by whole sealed segments from its start, and the
 * per-minute stats rollups.
 *
 * A prune keeps tamper-evidence: before a batch goes, its entries are checked as `verify` would check them
 * (contiguous from the anchor, each hash and link, each segment head), so an alteration is never laundered by
 * deleting it; the batch's last entry becomes the anchor (seq and hash), which the kept chain goes on from; the
 * anchor carries, per action, how many entries were pruned and the sum of their `details.count`, so
 * `reconcile` and `verify --jobs` answer as before; and the prune is itself an `audit.prune` entry holding the
 * anchor, appended in the batch's transaction, so `verify` detects an anchor moved or changed any other way.
 *
 * Each batch is one transaction under the sealer's lock: a sealer or a second pruner (another process) waits
 * for it, then starts from the new anchor. Batches are bounded (whole segments up to 5,000 entries) and a call
 * is bounded in batches, so a long-neglected trail is worked through over several passes.
 */
import type { AuditAnchor, AuditEntry, AuditPruned, AuditRecord, AuditSegment, VisibilityStore } from '../store/visibility.ts';
import { AUDIT_PRUNE, anchorSignature, AuditTamperedError, chainLinks, entryHash, GENESIS_HASH } from './audit.ts';

/** Entries per prune batch at most (the sealer's segment size), in whole segments. */
export const AUDIT_PRUNE_BATCH = 5000;
/** Rows per stats table per statement. */
export const STATS_PRUNE_BATCH = 5000;
const MINUTE = 60_000;
/**
 * How far a segment's `sealed_at` may fall before an entry it holds was recorded: the two clocks may be different
 * processes'. Further back, `sealed_at` (which the chain does not cover) was backdated to have recent entries pruned.
 */
export const SEAL_CLOCK_SKEW_MS = 5 * MINUTE;

/**
 * The anchor after pruning `entries` (the whole of `segments`, in seq order) from `from`; throws
 * AuditTamperedError, and nothing is pruned, when they do not verify.
 */
export function nextAnchor(from: AuditAnchor | null, entries: AuditEntry[], segments: AuditSegment[], now: number): AuditAnchor {
  let seq = from?.seq ?? 0;
  let prev = from?.hash ?? GENESIS_HASH;
  const refuse = (at: number, id: string | null, why: string): never => {
    throw new AuditTamperedError({ seq: at, id, reason: `${why}; nothing was pruned` });
  };
  let segEnd = seq;
  for (const s of segments) {
    if (s.firstSeq !== segEnd + 1) refuse(segEnd + 1, null, `audit segment ${s.id} starts at seq ${s.firstSeq}, expected ${segEnd + 1}: a segment was removed`);
    segEnd = s.lastSeq;
  }
  const heads = new Map(segments.map((s) => [s.lastSeq, s]));
  const totals: AuditAnchor['totals'] = structuredClone(from?.totals ?? {});
  let newest = -Infinity;
  for (const e of entries) {
    if (e.seq !== seq + 1) refuse(seq + 1, null, `entry seq ${seq + 1} is missing (the chain jumps from ${seq} to ${e.seq})`);
    if (e.prevHash !== prev) refuse(e.seq!, e.id, `entry seq ${e.seq} (id ${e.id}) does not follow entry seq ${seq}`);
    if (entryHash(prev, e, e.seq!) !== e.hash) refuse(e.seq!, e.id, `entry seq ${e.seq} (id ${e.id}, ${e.action}) was altered`);
    seq = e.seq!;
    prev = e.hash!;
    newest = Math.max(newest, e.at);
    const head = heads.get(seq);
    if (head && head.headHash !== prev) refuse(seq, null, `segment ${head.id} head (seq ${seq}) does not match the chain`);
    if (head && head.sealedAt < newest - SEAL_CLOCK_SKEW_MS) {
      const when = (t: number) => new Date(t).toISOString();
      refuse(seq, null, `segment ${head.id} says it was sealed at ${when(head.sealedAt)}, before an entry it holds was recorded (${when(newest)}): its sealed_at was backdated`);
    }
    if (head) newest = -Infinity;
    const t = (totals[e.action] ??= { entries: 0, count: 0 });
    t.entries++;
    const count = (e.details as { count?: unknown } | null)?.count;
    if (typeof count === 'number') t.count += count;
  }
  if (seq !== segEnd) refuse(seq + 1, null, `entry seq ${seq + 1} is missing: the segments cover entries up to seq ${segEnd}`);
  return { seq, hash: prev, totals, prunedAt: now };
}

/**
 * The `audit.prune` entry of one batch: the range it removed and the new anchor, whole, so verify can match it;
 * signed (anchorSignature) when a key is given.
 */
export function pruneRecord(actor: string, sealedBefore: number, key?: string) {
  return (from: AuditAnchor | null, to: AuditAnchor, pruned: { entries: number; segments: number }): AuditRecord => ({
    at: to.prunedAt,
    actor,
    action: AUDIT_PRUNE,
    target: `audit:${(from?.seq ?? 0) + 1}..${to.seq}`,
    details: {
      // Keys in sorted order, so the chain's canonical JSON of the entry is a plain JSON.stringify.
      anchor: { hash: to.hash, seq: to.seq, ...(key && { signature: anchorSignature(to, key) }), totals: to.totals },
      entries: pruned.entries,
      from_seq: from?.seq ?? 0,
      sealed_before: sealedBefore,
      segments: pruned.segments,
    },
  });
}

export interface AuditPruneOptions {
  /** Segments sealed longer ago than this are pruned. */
  olderThanMs: number;
  now: number;
  /** Who prunes, as the `audit.prune` entries name it (default 'retention'). */
  actor?: string;
  /** Batches (transactions) at most; default unbounded. */
  maxBatches?: number;
  /** Entries per batch at most (default AUDIT_PRUNE_BATCH). */
  batchSize?: number;
  /** Signs each new anchor in its `audit.prune` entry (default REBOUND_AUDIT_KEY), for `verify` with the key. */
  key?: string;
}

export interface AuditPruneReport {
  entries: number;
  segments: number;
  batches: number;
  /** The anchor after the last batch; null when nothing was pruned now. */
  anchor: AuditAnchor | null;
}

/** Prunes the audit trail's segments sealed before `now - olderThanMs`, oldest first, batch by batch. */
export async function pruneAudit(visibility: VisibilityStore, o: AuditPruneOptions): Promise<AuditPruneReport> {
  const sealedBefore = o.now - o.olderThanMs;
  const report: AuditPruneReport = { entries: 0, segments: 0, batches: 0, anchor: null };
  const record = pruneRecord(o.actor ?? 'retention', sealedBefore, o.key ?? process.env.REBOUND_AUDIT_KEY);
  while (report.batches < (o.maxBatches ?? Infinity)) {
    const done: AuditPruned | null = await visibility.pruneAudit({ sealedBefore, limit: o.batchSize ?? AUDIT_PRUNE_BATCH, now: o.now, anchor: nextAnchor, record });
    if (!done) break;
    report.batches++;
    report.entries += done.entries;
    report.segments += done.segments;
    report.anchor = done.anchor;
  }
  // The prune entries are chained now, not at some process's next seal tick (one that has the trail on, if any).
  // Bounded like a pass: behind a larger unsealed backlog they are chained by the next seal, and verify finds them unsealed meanwhile.
  for (let i = 0; report.batches > 0 && i < 10; i++) {
    if (!(await visibility.sealAudit({ limit: AUDIT_PRUNE_BATCH, now: o.now, chain: chainLinks }))) break;
  }
  return report;
}

/** Deletes stats rollups of minutes before `now - olderThanMs`, in bounded statements. Returns the rows deleted. */
export async function pruneStatsRollups(
  visibility: VisibilityStore,
  o: { olderThanMs: number; now: number; maxBatches?: number; batchSize?: number },
): Promise<number> {
  const before = Math.floor((o.now - o.olderThanMs) / MINUTE) * MINUTE;
  const limit = o.batchSize ?? STATS_PRUNE_BATCH;
  let deleted = 0;
  for (let i = 0; i < (o.maxBatches ?? Infinity); i++) {
    const n = await visibility.pruneStats(before, limit);
    deleted += n;
    // Fewer than one table's limit in all: every table is done.
    if (n < limit) break;
  }
  return deleted;
}
