/** The visibility store on PostgreSQL: audit entries, sealed segments, stats rollups. */
import type pg from 'pg';
import { withTransaction } from './transaction.ts';
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
import { PRUNE_SEGMENT_SCAN, prunableSegments, STATS_PRUNE_LIMIT, STATS_TABLES, toAnchor, toAuditEntry, toSegment, untilDone, withAnchorTotals } from '../visibility-rows.ts';

/** Up to this many audit entries are inserted with one parameter per column each; more go as one JSON parameter. */
const FEW_ENTRIES = 20;

export class PostgresVisibilityStore implements VisibilityStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn);
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map((r) => [r.at, r.actor, r.action, r.target, r.details == null ? null : JSON.stringify(r.details)]);
    if (rows.length <= FEW_ENTRIES) {
      // A few entries, such as a bulk submission's large one: plain text parameters, sent as they are.
      const values = rows.map((_, i) => `($${5 * i + 1}::bigint, $${5 * i + 2}, $${5 * i + 3}, $${5 * i + 4}, $${5 * i + 5})`);
      await this.pool.query(`INSERT INTO audit_log (at, actor, action, target, details) VALUES ${values.join(', ')}`, rows.flat());
      return;
    }
    // Many entries: one JSON parameter (node-postgres escapes array parameters character by character).
    await this.pool.query(
      `INSERT INTO audit_log (at, actor, action, target, details)
       SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord)
       ORDER BY ord`,
      [JSON.stringify(rows)],
    );
  }

  async sealAudit(p: SealParams): Promise<AuditSegment | null> {
    // Most ticks find nothing: check before opening a transaction.
    if ((await this.pool.query('SELECT 1 FROM audit_log WHERE seq IS NULL LIMIT 1')).rows.length === 0) return null;
    return this.tx(async (c) => {
      // One sealer at a time: the chain has a single head.
      await this.lockChain(c);
      const { rows } = await c.query('SELECT * FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1', [p.limit]);
      if (rows.length === 0) return null;
      // Everything sealed may have been pruned: the chain then goes on from the anchor.
      const head = await c.query(
        `SELECT seq, hash FROM ((SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1)
         UNION ALL (SELECT seq, hash FROM audit_anchor)) h ORDER BY seq DESC LIMIT 1`,
      );
      const links = p.chain(head.rows[0] ? { seq: Number(head.rows[0].seq), hash: head.rows[0].hash } : null, rows.map(toAuditEntry));
      // One JSON parameter, [id, seq, prev_hash, hash] per entry: node-postgres escapes array parameters character by character.
      await c.query(
        `UPDATE audit_log a SET seq = (v->>1)::bigint, prev_hash = v->>2, hash = v->>3
         FROM jsonb_array_elements($1::jsonb) AS t(v)
         WHERE a.id = (v->>0)::bigint`,
        [JSON.stringify(links.map((l, i) => [Number(rows[i].id), l.seq, l.prevHash, l.hash]))],
      );
      const last = links[links.length - 1];
      const seg = await c.query(
        `INSERT INTO audit_segments (first_seq, last_seq, count, head_hash, prev_head_hash, sealed_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [links[0].seq, last.seq, links.length, last.hash, links[0].prevHash, p.now],
      );
      return toSegment(seg.rows[0]);
    });
  }

  async readAudit(p: { afterSeq: number; limit: number; throughSeq?: number }): Promise<AuditEntry[]> {
    const { rows } = await this.pool.query('SELECT * FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3', [
      p.afterSeq,
      p.throughSeq ?? Number.MAX_SAFE_INTEGER,
      p.limit,
    ]);
    return rows.map(toAuditEntry);
  }

  async listAuditSegments(): Promise<AuditSegment[]> {
    const { rows } = await this.pool.query('SELECT * FROM audit_segments ORDER BY id');
    return rows.map(toSegment);
  }

  async countUnsealedAudit(): Promise<number> {
    const { rows } = await this.pool.query('SELECT count(*) AS n FROM audit_log WHERE seq IS NULL');
    return Number(rows[0].n);
  }

  async auditTotals(countActions: string[]): Promise<AuditTotals> {
    // One statement, one snapshot: a prune committing between two reads would count its entries twice or never.
    const { rows } = await this.pool.query(
      `SELECT action, count(*) AS n, coalesce(sum((details::jsonb ->> 'count')::bigint), 0) AS total, NULL AS anchor
       FROM audit_log WHERE action = ANY($1::text[]) GROUP BY action
       UNION ALL
       SELECT NULL, NULL, NULL, row_to_json(a)::text FROM audit_anchor a`,
      [['job.submit', ...countActions]],
    );
    const by = new Map(rows.filter((r) => r.action != null).map((r) => [r.action as string, r]));
    const counted: Record<string, number> = {};
    for (const a of countActions) counted[a] = Number(by.get(a)?.total ?? 0);
    const anchor = rows.find((r) => r.anchor != null)?.anchor;
    return withAnchorTotals({ submitted: Number(by.get('job.submit')?.n ?? 0), counted }, anchor ? toAnchor(JSON.parse(anchor)) : null);
  }

  /** The sealer's lock: pruning takes it too, so the chain's start and head never move at once. */
  private async lockChain(c: pg.PoolClient): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rebound:audit-seal:${this.schema}`]);
  }

  async auditAnchor(): Promise<AuditAnchor | null> {
    const { rows } = await this.pool.query('SELECT * FROM audit_anchor');
    return rows[0] ? toAnchor(rows[0]) : null;
  }

  async pruneAudit(p: AuditPruneParams): Promise<AuditPruned | null> {
    // Most passes find nothing old enough: check before opening a transaction.
    const first = (await this.pool.query('SELECT sealed_at FROM audit_segments ORDER BY id LIMIT 1')).rows[0];
    if (!first || Number(first.sealed_at) >= p.sealedBefore) return null;
    return this.tx(async (c) => {
      await this.lockChain(c);
      const anchorRow = (await c.query('SELECT * FROM audit_anchor')).rows[0];
      const from = anchorRow ? toAnchor(anchorRow) : null;
      const oldest = (await c.query('SELECT * FROM audit_segments ORDER BY id LIMIT $1', [PRUNE_SEGMENT_SCAN])).rows.map(toSegment);
      const segments = prunableSegments(oldest, p.sealedBefore, p.limit);
      if (segments.length === 0) return null;
      const last = segments[segments.length - 1];
      const entries = (
        await c.query('SELECT * FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq', [from?.seq ?? 0, last.lastSeq])
      ).rows.map(toAuditEntry);
      const to = p.anchor(from, entries, segments, p.now);
      await c.query('DELETE FROM audit_log WHERE seq > $1 AND seq <= $2', [from?.seq ?? 0, to.seq]);
      await c.query('DELETE FROM audit_segments WHERE id <= $1', [last.id]);
      await c.query(
        `INSERT INTO audit_anchor (id, seq, hash, totals, pruned_at) VALUES (1, $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, totals = excluded.totals, pruned_at = excluded.pruned_at`,
        [to.seq, to.hash, JSON.stringify(to.totals), to.prunedAt],
      );
      const pruned = { entries: entries.length, segments: segments.length };
      const r = p.record(from, to, pruned);
      await c.query('INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)', [
        r.at,
        r.actor,
        r.action,
        r.target,
        r.details == null ? null : JSON.stringify(r.details),
      ]);
      return { anchor: to, ...pruned };
    });
  }

  async readOperatorAudit(p: { throughSeq: number; limit: number }): Promise<AuditEntry[]> {
    // The predicate is the partial index's (migration 41), word for word, so the planner can use it.
    const { rows } = await this.pool.query(
      "SELECT * FROM audit_log WHERE action NOT LIKE 'job.submit%' AND seq <= $1 ORDER BY seq DESC LIMIT $2",
      [p.throughSeq, p.limit],
    );
    return rows.map(toAuditEntry);
  }

  async readUnsealedAudit(p: { action: string; limit: number }): Promise<AuditEntry[]> {
    const { rows } = await this.pool.query('SELECT * FROM audit_log WHERE seq IS NULL AND action = $1 ORDER BY id LIMIT $2', [p.action, p.limit]);
    return rows.map(toAuditEntry);
  }

  async addStats(buckets: StatsBucket[]): Promise<void> {
    if (buckets.length === 0) return;
    const outcomes = buckets.flatMap((b) => Object.entries(b.outcomes).map(([o, n]) => ({ m: b.minute, t: b.type, o, n })));
    const latency = buckets.flatMap((b) => b.latency.map((l) => ({ m: b.minute, t: b.type, ...l })));
    const errors = buckets.flatMap((b) => b.errors.map((e) => ({ m: b.minute, t: b.type, ...e })));
    await this.tx(async (c) => {
      if (outcomes.length)
        await c.query(
          `INSERT INTO stats_outcomes (minute, type, outcome, count)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])
           ON CONFLICT (minute, type, outcome) DO UPDATE SET count = stats_outcomes.count + excluded.count`,
          [outcomes.map((x) => x.m), outcomes.map((x) => x.t), outcomes.map((x) => x.o), outcomes.map((x) => x.n)],
        );
      if (latency.length)
        await c.query(
          `INSERT INTO stats_latency (minute, type, kind, bucket, count)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
           ON CONFLICT (minute, type, kind, bucket) DO UPDATE SET count = stats_latency.count + excluded.count`,
          [latency.map((x) => x.m), latency.map((x) => x.t), latency.map((x) => x.kind), latency.map((x) => x.bucket), latency.map((x) => x.count)],
        );
      if (errors.length)
        await c.query(
          `INSERT INTO stats_errors (minute, type, fingerprint, kind, name, message, count)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
           ON CONFLICT (minute, type, fingerprint) DO UPDATE SET count = stats_errors.count + excluded.count`,
          [
            errors.map((x) => x.m),
            errors.map((x) => x.t),
            errors.map((x) => x.fingerprint),
            errors.map((x) => x.kind),
            errors.map((x) => x.name),
            errors.map((x) => x.message),
            errors.map((x) => x.count),
          ],
        );
    });
  }

  async pruneStats(beforeMinute: number, limit?: number): Promise<number> {
    // Oldest minutes first (the primary key starts with minute), a bounded number of rows per statement, so each
    // delete stays short. Without a limit, rounds of STATS_PRUNE_LIMIT until none is left.
    const round = () =>
      Promise.all(
        STATS_TABLES.map(async (table) => {
          const sql = `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${table} WHERE minute < $1 ORDER BY minute LIMIT $2))`;
          return (await this.pool.query(sql, [beforeMinute, limit ?? STATS_PRUNE_LIMIT])).rowCount ?? 0;
        }),
      );
    return untilDone(round, limit);
  }

  async readStats(p: { fromMinute: number; toMinute: number; type?: string }): Promise<StatsRows> {
    const typeClause = p.type ? 'AND type = $3' : '';
    const params = [p.fromMinute, p.toMinute, ...(p.type ? [p.type] : [])];
    const num = <T extends Record<string, unknown>>(rows: T[], keys: string[]) =>
      rows.map((r) => ({ ...r, ...Object.fromEntries(keys.map((k) => [k, Number(r[k])])) }));
    const [o, l, e] = await Promise.all([
      this.pool.query(`SELECT minute, type, outcome, count FROM stats_outcomes WHERE minute BETWEEN $1 AND $2 ${typeClause}`, params),
      this.pool.query(
        `SELECT type, kind, bucket, sum(count) AS count FROM stats_latency WHERE minute BETWEEN $1 AND $2 ${typeClause}
         GROUP BY type, kind, bucket`,
        params,
      ),
      this.pool.query(
        `SELECT type, fingerprint, max(kind) AS kind, max(name) AS name, max(message) AS message, sum(count) AS count
         FROM stats_errors WHERE minute BETWEEN $1 AND $2 ${typeClause} GROUP BY type, fingerprint`,
        params,
      ),
    ]);
    return {
      outcomes: num(o.rows, ['minute', 'count']) as StatsRows['outcomes'],
      latency: num(l.rows, ['bucket', 'count']) as StatsRows['latency'],
      errors: num(e.rows, ['count']) as StatsRows['errors'],
    };
  }

  async oldestDueRunAt(now: number): Promise<number | null> {
    const { rows } = await this.pool.query("SELECT min(run_at) AS at FROM jobs WHERE state IN ('available', 'scheduled') AND run_at <= $1", [now]);
    return rows[0].at == null ? null : Number(rows[0].at);
  }
}
