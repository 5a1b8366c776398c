/** The visibility store on SQLite: audit entries, sealed segments, stats rollups. */
import type Database from 'better-sqlite3';
import type {
  AuditAnchor,
  AuditEntry,
  AuditPruned,
  AuditPruneParams,
  AuditRecord,
  AuditSegment,
  AuditTotals,
  SealParams,
  StatsBucket,
  StatsRows,
  VisibilityStore,
} from '../visibility.ts';
import {
  PRUNE_SEGMENT_SCAN,
  prunableSegments,
  STATS_PRUNE_LIMIT,
  STATS_TABLES,
  toAnchor,
  toAuditEntry,
  toSegment,
  untilDone,
  withAnchorTotals,
  type AnchorRow,
  type AuditRow,
  type SegmentRow,
} from '../visibility-rows.ts';
import { writeTransaction } from './write-lock.ts';

export class SqliteVisibilityStore implements VisibilityStore {
  constructor(private readonly db: Database.Database) {}

  private write<T>(fn: () => T): Promise<T> {
    return writeTransaction(this.db, fn);
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const insert = this.db.prepare('INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)');
    await this.write(() => {
      for (const r of records) insert.run(r.at, r.actor, r.action, r.target, r.details == null ? null : JSON.stringify(r.details));
    });
  }

  async sealAudit(p: SealParams): Promise<AuditSegment | null> {
    // Most ticks find nothing: check without taking the write lock.
    if (!this.db.prepare('SELECT 1 FROM audit_log WHERE seq IS NULL LIMIT 1').get()) return null;
    return this.write(() => {
      const rows = this.db.prepare('SELECT * FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT ?').all(p.limit) as AuditRow[];
      if (rows.length === 0) return null;
      // Everything sealed may have been pruned: the chain then goes on from the anchor.
      const head = (this.db.prepare('SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1').get() ??
        this.db.prepare('SELECT seq, hash FROM audit_anchor').get()) as { seq: number; hash: string } | undefined;
      const links = p.chain(head ?? null, rows.map(toAuditEntry));
      const update = this.db.prepare('UPDATE audit_log SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?');
      rows.forEach((r, i) => update.run(links[i].seq, links[i].prevHash, links[i].hash, r.id));
      const last = links[links.length - 1];
      const row = this.db
        .prepare(
          `INSERT INTO audit_segments (first_seq, last_seq, count, head_hash, prev_head_hash, sealed_at)
           VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
        )
        .get(links[0].seq, last.seq, links.length, last.hash, links[0].prevHash, p.now) as SegmentRow;
      return toSegment(row);
    });
  }

  async readAudit(p: { afterSeq: number; limit: number; throughSeq?: number }): Promise<AuditEntry[]> {
    const rows = this.db
      .prepare('SELECT * FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?')
      .all(p.afterSeq, p.throughSeq ?? Number.MAX_SAFE_INTEGER, p.limit) as AuditRow[];
    return rows.map(toAuditEntry);
  }

  async listAuditSegments(): Promise<AuditSegment[]> {
    return (this.db.prepare('SELECT * FROM audit_segments ORDER BY id').all() as SegmentRow[]).map(toSegment);
  }

  async countUnsealedAudit(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM audit_log WHERE seq IS NULL').get() as { n: number }).n;
  }

  async auditTotals(countActions: string[]): Promise<AuditTotals> {
    // One read transaction: a prune in another process between the reads would count its entries twice or never.
    return this.db.transaction(() => {
      const submitted = (this.db.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'job.submit'").get() as { n: number }).n;
      const counted: Record<string, number> = {};
      const sum = this.db.prepare("SELECT coalesce(sum(json_extract(details, '$.count')), 0) AS n FROM audit_log WHERE action = ?");
      for (const a of countActions) counted[a] = (sum.get(a) as { n: number }).n;
      return withAnchorTotals({ submitted, counted }, this.anchorNow());
    })();
  }

  private anchorNow(): AuditAnchor | null {
    const row = this.db.prepare('SELECT * FROM audit_anchor').get() as AnchorRow | undefined;
    return row ? toAnchor(row) : null;
  }

  async auditAnchor(): Promise<AuditAnchor | null> {
    return this.anchorNow();
  }

  async pruneAudit(p: AuditPruneParams): Promise<AuditPruned | null> {
    // Most passes find nothing old enough: check without taking the write lock.
    const first = this.db.prepare('SELECT sealed_at FROM audit_segments ORDER BY id LIMIT 1').get() as { sealed_at: number } | undefined;
    if (!first || first.sealed_at >= p.sealedBefore) return null;
    // The write lock also holds off the sealer and other pruners: each batch starts from the anchor it reads here.
    return this.write(() => {
      const from = this.anchorNow();
      const oldest = (this.db.prepare('SELECT * FROM audit_segments ORDER BY id LIMIT ?').all(PRUNE_SEGMENT_SCAN) as SegmentRow[]).map(toSegment);
      const segments = prunableSegments(oldest, p.sealedBefore, p.limit);
      if (segments.length === 0) return null;
      const last = segments[segments.length - 1];
      const entries = (
        this.db.prepare('SELECT * FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq').all(from?.seq ?? 0, last.lastSeq) as AuditRow[]
      ).map(toAuditEntry);
      const to = p.anchor(from, entries, segments, p.now);
      this.db.prepare('DELETE FROM audit_log WHERE seq > ? AND seq <= ?').run(from?.seq ?? 0, to.seq);
      this.db.prepare('DELETE FROM audit_segments WHERE id <= ?').run(Number(last.id));
      this.db
        .prepare(
          `INSERT INTO audit_anchor (id, seq, hash, totals, pruned_at) VALUES (1, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, totals = excluded.totals, pruned_at = excluded.pruned_at`,
        )
        .run(to.seq, to.hash, JSON.stringify(to.totals), to.prunedAt);
      const pruned = { entries: entries.length, segments: segments.length };
      const r = p.record(from, to, pruned);
      this.db
        .prepare('INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)')
        .run(r.at, r.actor, r.action, r.target, r.details == null ? null : JSON.stringify(r.details));
      return { anchor: to, ...pruned };
    });
  }

  async readOperatorAudit(p: { throughSeq: number; limit: number }): Promise<AuditEntry[]> {
    // The predicate is the partial index's (migration 41), word for word, so the index is used.
    const rows = this.db
      .prepare("SELECT * FROM audit_log WHERE action NOT LIKE 'job.submit%' AND seq <= ? ORDER BY seq DESC LIMIT ?")
      .all(p.throughSeq, p.limit) as AuditRow[];
    return rows.map(toAuditEntry);
  }

  async readUnsealedAudit(p: { action: string; limit: number }): Promise<AuditEntry[]> {
    const rows = this.db.prepare('SELECT * FROM audit_log WHERE seq IS NULL AND action = ? ORDER BY id LIMIT ?').all(p.action, p.limit) as AuditRow[];
    return rows.map(toAuditEntry);
  }

  async addStats(buckets: StatsBucket[]): Promise<void> {
    if (buckets.length === 0) return;
    const outcome = this.db.prepare(
      `INSERT INTO stats_outcomes (minute, type, outcome, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (minute, type, outcome) DO UPDATE SET count = count + excluded.count`,
    );
    const latency = this.db.prepare(
      `INSERT INTO stats_latency (minute, type, kind, bucket, count) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (minute, type, kind, bucket) DO UPDATE SET count = count + excluded.count`,
    );
    const error = this.db.prepare(
      `INSERT INTO stats_errors (minute, type, fingerprint, kind, name, message, count) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (minute, type, fingerprint) DO UPDATE SET count = count + excluded.count`,
    );
    await this.write(() => {
      for (const b of buckets) {
        for (const [o, n] of Object.entries(b.outcomes)) outcome.run(b.minute, b.type, o, n);
        for (const l of b.latency) latency.run(b.minute, b.type, l.kind, l.bucket, l.count);
        for (const e of b.errors) error.run(b.minute, b.type, e.fingerprint, e.kind, e.name, e.message, e.count);
      }
    });
  }

  async pruneStats(beforeMinute: number, limit?: number): Promise<number> {
    // Oldest minutes first (the primary key starts with minute), a bounded number of rows per transaction, so no
    // delete holds the write lock long. Without a limit, rounds of STATS_PRUNE_LIMIT until none is left.
    const round = () =>
      this.write(() =>
        STATS_TABLES.map(
          (table) =>
            this.db
              .prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE minute < ? ORDER BY minute LIMIT ?)`)
              .run(beforeMinute, limit ?? STATS_PRUNE_LIMIT).changes,
        ),
      );
    return untilDone(round, limit);
  }

  async readStats(p: { fromMinute: number; toMinute: number; type?: string }): Promise<StatsRows> {
    const typeClause = p.type ? 'AND type = ?' : '';
    const params = [p.fromMinute, p.toMinute, ...(p.type ? [p.type] : [])];
    return {
      outcomes: this.db
        .prepare(`SELECT minute, type, outcome, count FROM stats_outcomes WHERE minute BETWEEN ? AND ? ${typeClause}`)
        .all(...params) as StatsRows['outcomes'],
      latency: this.db
        .prepare(
          `SELECT type, kind, bucket, sum(count) AS count FROM stats_latency WHERE minute BETWEEN ? AND ? ${typeClause}
           GROUP BY type, kind, bucket`,
        )
        .all(...params) as StatsRows['latency'],
      errors: this.db
        .prepare(
          `SELECT type, fingerprint, max(kind) AS kind, max(name) AS name, max(message) AS message, sum(count) AS count
           FROM stats_errors WHERE minute BETWEEN ? AND ? ${typeClause} GROUP BY type, fingerprint`,
        )
        .all(...params) as StatsRows['errors'],
    };
  }

  async oldestDueRunAt(now: number): Promise<number | null> {
    const row = this.db.prepare("SELECT min(run_at) AS at FROM jobs WHERE state IN ('available', 'scheduled') AND run_at <= ?").get(now);
    return (row as { at: number | null }).at;
  }
}
