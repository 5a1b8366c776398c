/**
 * Coordination on PostgreSQL. A fenced write first takes the leadership row
 * FOR SHARE in its own transaction: a takeover (which updates that row) waits
 * for the write to commit, and a write after a takeover sees the new token and
 * is refused. Pool queries run with search_path set to the schema; queries on a
 * transaction client handed to the core store qualify the schema.
 */
import type pg from 'pg';
import { SHARED_LOCK_IDLE_TIMEOUT_MS, withTransaction } from './transaction.ts';
import { canonicalJson } from '../../engine/enqueue-input.ts';
import { StaleTermError } from '../../errors.ts';
import type {
  CoordinationStore,
  Fence,
  FireInput,
  FireRecord,
  FireResult,
  Lease,
  PrunedCount,
  PruneJobsParams,
  ScheduleRecord,
  ScheduleSpec,
} from '../coordination.ts';
import type { Store } from '../store.ts';

interface LeaseRow {
  name: string;
  holder: string;
  token: number;
  expires_at: number;
}

interface ScheduleRow {
  name: string;
  cron: string;
  tz: string;
  type: string;
  payload: any;
  misfire: string;
  jitter_ms: number;
  source: 'code' | 'runtime';
  paused: boolean;
  version: number;
  next_fire_at: number | null;
  last_fire_at: number | null;
  created_at: number;
  updated_at: number;
}

const toLease = (r: LeaseRow): Lease => ({ name: r.name, holder: r.holder, token: r.token, expiresAt: r.expires_at });

const toSchedule = (r: ScheduleRow): ScheduleRecord => ({
  name: r.name,
  cron: r.cron,
  tz: r.tz,
  type: r.type,
  payload: r.payload,
  misfire: JSON.parse(r.misfire),
  jitterMs: r.jitter_ms,
  source: r.source,
  paused: r.paused,
  version: r.version,
  nextFireAt: r.next_fire_at,
  lastFireAt: r.last_fire_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class PostgresCoordinationStore implements CoordinationStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    /** The core store, to enqueue a fire's job inside the fire's transaction. */
    private readonly jobs: Pick<Store, 'insertJobs'>,
  ) {}

  /**
   * A transaction that first checks the caller's fence, when it has one, and holds it with a shared row lock. A
   * leader frozen (GC, SIGSTOP) inside it would block every takeover: the server ends it after the shared-lock
   * idle timeout, rolling the write back.
   */
  private fencedTx<T>(fence: Fence | undefined, now: number, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (!fence) return withTransaction(this.pool, fn);
    const checked = async (c: pg.PoolClient) => {
      await this.checkFence(c, fence, now);
      return fn(c);
    };
    return withTransaction(this.pool, checked, { idleTimeoutMs: SHARED_LOCK_IDLE_TIMEOUT_MS });
  }

  private async checkFence(c: pg.PoolClient, fence: Fence, now: number) {
    const { rows } = await c.query('SELECT 1 FROM coordination_leases WHERE name = $1 AND token = $2 AND expires_at > $3 FOR SHARE', [
      fence.lease,
      fence.token,
      now,
    ]);
    if (rows.length === 0) throw new StaleTermError(fence.lease, fence.token);
  }

  async acquireLease(p: { name: string; holder: string; ttlMs: number; now: number }): Promise<Lease | null> {
    const { rows } = await this.pool.query<LeaseRow>(
      `INSERT INTO coordination_leases (name, holder, token, expires_at, acquired_at) VALUES ($1, $2, 1, $3, $4)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = coordination_leases.token + 1,
              expires_at = excluded.expires_at, acquired_at = excluded.acquired_at
       WHERE coordination_leases.expires_at <= $4
       RETURNING *`,
      [p.name, p.holder, p.now + p.ttlMs, p.now],
    );
    return rows[0] ? toLease(rows[0]) : null;
  }

  async renewLease(p: { name: string; token: number; ttlMs: number; now: number }): Promise<Lease | null> {
    const { rows } = await this.pool.query<LeaseRow>(
      'UPDATE coordination_leases SET expires_at = $1 WHERE name = $2 AND token = $3 AND expires_at > $4 RETURNING *',
      [p.now + p.ttlMs, p.name, p.token, p.now],
    );
    return rows[0] ? toLease(rows[0]) : null;
  }

  async releaseLease(p: { name: string; token: number; now: number }): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'UPDATE coordination_leases SET expires_at = $1 WHERE name = $2 AND token = $3 AND expires_at > $1',
      [p.now, p.name, p.token],
    );
    return rowCount === 1;
  }

  async getLease(name: string): Promise<Lease | null> {
    const { rows } = await this.pool.query<LeaseRow>('SELECT * FROM coordination_leases WHERE name = $1', [name]);
    return rows[0] ? toLease(rows[0]) : null;
  }

  async upsertSchedule(spec: ScheduleSpec, nextFireAt: number | null, now: number, fence?: Fence) {
    return this.fencedTx(fence, now, async (c) => {
      const { rows: found } = await c.query<ScheduleRow>('SELECT * FROM schedules WHERE name = $1 FOR UPDATE', [spec.name]);
      const existing = found[0];
      const payload = JSON.stringify(spec.payload);
      const misfire = JSON.stringify(spec.misfire);
      const values = [spec.cron, spec.tz, spec.type, payload, misfire, spec.jitterMs, spec.source];
      if (!existing) {
        const { rows } = await c.query<ScheduleRow>(
          `INSERT INTO schedules (name, cron, tz, type, payload, misfire, jitter_ms, source, next_fire_at, created_at, updated_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, nextval('schedule_versions'))
           ON CONFLICT (name) DO NOTHING RETURNING *`,
          [spec.name, ...values, nextFireAt, now],
        );
        // A concurrent creator won: its definition stands; ours is compared on the next sync.
        if (!rows[0]) return { schedule: (await this.getSchedule(spec.name))!, change: 'unchanged' as const };
        return { schedule: toSchedule(rows[0]), change: 'created' as const };
      }
      const same =
        existing.cron === spec.cron &&
        existing.tz === spec.tz &&
        existing.type === spec.type &&
        canonicalJson(existing.payload) === canonicalJson(spec.payload) &&
        existing.misfire === misfire &&
        existing.jitter_ms === spec.jitterMs &&
        existing.source === spec.source;
      if (same) return { schedule: toSchedule(existing), change: 'unchanged' as const };
      const timing = existing.cron !== spec.cron || existing.tz !== spec.tz;
      const { rows } = await c.query<ScheduleRow>(
        `UPDATE schedules SET cron = $1, tz = $2, type = $3, payload = $4, misfire = $5, jitter_ms = $6, source = $7,
                version = nextval('schedule_versions'), updated_at = $8, next_fire_at = CASE WHEN $9::boolean THEN $10::bigint ELSE next_fire_at END
         WHERE name = $11 RETURNING *`,
        [...values, now, timing, nextFireAt, spec.name],
      );
      return { schedule: toSchedule(rows[0]), change: 'updated' as const };
    });
  }

  async getSchedule(name: string): Promise<ScheduleRecord | null> {
    const { rows } = await this.pool.query<ScheduleRow>('SELECT * FROM schedules WHERE name = $1', [name]);
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    const { rows } = await this.pool.query<ScheduleRow>('SELECT * FROM schedules ORDER BY name');
    return rows.map(toSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM schedules WHERE name = $1', [name]);
    return rowCount === 1;
  }

  async setSchedulePaused(name: string, paused: boolean, now: number): Promise<{ schedule: ScheduleRecord; changed: boolean } | null> {
    // The row as changed, or, when it was already in that state, as it is.
    const { rows } = await this.pool.query<ScheduleRow & { changed: boolean }>(
      `WITH changed AS (
         UPDATE schedules SET paused = $1, version = nextval('schedule_versions'), updated_at = $2 WHERE name = $3 AND paused <> $1 RETURNING *
       )
       SELECT *, true AS changed FROM changed
       UNION ALL
       SELECT *, false AS changed FROM schedules WHERE name = $3 AND NOT EXISTS (SELECT 1 FROM changed)`,
      [paused, now, name],
    );
    return rows[0] ? { schedule: toSchedule(rows[0]), changed: rows[0].changed } : null;
  }

  async fireSchedule(p: {
    fence: Fence;
    name: string;
    version: number;
    fires: FireInput[];
    lastFireAt: number | null;
    nextFireAt: number | null;
    now: number;
  }): Promise<FireResult[]> {
    return this.fencedTx(p.fence, p.now, async (c) => {
      const { rows: current } = await c.query<{ version: number }>('SELECT version FROM schedules WHERE name = $1 FOR UPDATE', [p.name]);
      if (!current[0] || current[0].version !== p.version) return [];
      const results: FireResult[] = [];
      for (const f of p.fires) {
        const claimed = await c.query(
          `INSERT INTO schedule_fires (schedule, fire_at, job_id, term, fired_at) VALUES ($1, $2, 0, $3, $4)
           ON CONFLICT DO NOTHING RETURNING fire_at`,
          [p.name, f.fireAt, p.fence.token, p.now],
        );
        if (claimed.rows.length === 0) {
          const { rows } = await c.query<{ job_id: number }>('SELECT job_id FROM schedule_fires WHERE schedule = $1 AND fire_at = $2', [
            p.name,
            f.fireAt,
          ]);
          results.push({ fireAt: f.fireAt, jobId: String(rows[0].job_id), created: false });
          continue;
        }
        const [inserted] = await this.jobs.insertJobs([f.job], p.now, c);
        await c.query('UPDATE schedule_fires SET job_id = $1 WHERE schedule = $2 AND fire_at = $3', [Number(inserted.job.id), p.name, f.fireAt]);
        results.push({ fireAt: f.fireAt, jobId: inserted.job.id, created: true });
      }
      await c.query(
        `UPDATE schedules SET next_fire_at = $1::bigint,
                last_fire_at = greatest(coalesce(last_fire_at, 0), coalesce($2::bigint, 0))
         WHERE name = $3 AND (next_fire_at IS NULL OR $1::bigint IS NULL OR next_fire_at <= $1::bigint)`,
        [p.nextFireAt, p.lastFireAt, p.name],
      );
      return results;
    });
  }

  async listFires(name: string, limit: number): Promise<FireRecord[]> {
    const { rows } = await this.pool.query<{ schedule: string; fire_at: number; job_id: number; term: number; fired_at: number }>(
      'SELECT * FROM schedule_fires WHERE schedule = $1 ORDER BY fire_at DESC LIMIT $2',
      [name, limit],
    );
    return rows.map((r) => ({ schedule: r.schedule, fireAt: r.fire_at, jobId: String(r.job_id), term: r.term, firedAt: r.fired_at }));
  }

  async pruneJobs(p: PruneJobsParams): Promise<Record<string, number>> {
    return this.fencedTx(p.fence, p.now, async (c) => {
      const { rows } = await c.query<{ id: number; type: string }>(
        `DELETE FROM jobs WHERE id IN (
           SELECT id FROM jobs
           WHERE state = $1 AND finished_at < $2
             AND ($3::text[] IS NULL OR type = ANY($3::text[]))
             AND NOT (type = ANY($4::text[]))
             -- A live key names its job until keyTtlMs after it finished: a retried enqueue must find it, not make another.
             AND (idempotency_key IS NULL OR key_expires_at <= $6)
             -- A parent still running (a workflow in join) reads its children's outcomes: they stay while it does,
             -- and while it is dead, since a redrive resumes it.
             AND NOT EXISTS (SELECT 1 FROM jobs parent WHERE parent.id = jobs.parent_id
                               AND parent.state NOT IN ('completed', 'cancelled', 'compensated'))
             -- A dead job that holds its ordering key (orderingOnDead 'wait') holds it until it is redriven or
             -- purged: pruned, the key's later jobs would run without it.
             AND NOT (state = 'dead' AND ordering_key IS NOT NULL AND ordering_on_dead = 'wait')
           ORDER BY finished_at LIMIT $5
           FOR UPDATE SKIP LOCKED)
         RETURNING id, type`,
        [p.state, p.finishedBefore, p.onlyTypes ?? null, p.exceptTypes ?? [], p.limit, p.now],
      );
      const ids = rows.map((r) => r.id);
      await c.query('DELETE FROM job_events WHERE job_id = ANY($1::bigint[])', [ids]);
      await c.query('DELETE FROM job_once WHERE job_id = ANY($1::bigint[])', [ids]);
      const counts: Record<string, number> = {};
      for (const r of rows) counts[r.type] = (counts[r.type] ?? 0) + 1;
      const types = Object.keys(counts);
      if (types.length) {
        await c.query(
          `INSERT INTO pruned_counts (type, state, count, last_pruned_at)
           SELECT t, $3, n, $4 FROM unnest($1::text[], $2::bigint[]) AS v(t, n)
           ON CONFLICT (type, state) DO UPDATE SET count = pruned_counts.count + excluded.count, last_pruned_at = excluded.last_pruned_at`,
          [types, types.map((t) => counts[t]), p.state, p.now],
        );
      }
      return counts;
    });
  }

  async pruneExpiredKeys(p: { fence: Fence; now: number; limit: number }): Promise<number> {
    return this.fencedTx(p.fence, p.now, async (c) => {
      const { rowCount } = await c.query(
        `UPDATE jobs SET idempotency_key = NULL WHERE id IN (
           SELECT id FROM jobs WHERE idempotency_key IS NOT NULL AND key_expires_at IS NOT NULL AND key_expires_at <= $1
           LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [p.now, p.limit],
      );
      return rowCount ?? 0;
    });
  }

  async pruneFires(p: { fence: Fence; before: number; limit: number; now: number }): Promise<number> {
    return this.fencedTx(p.fence, p.now, async (c) => {
      const { rowCount } = await c.query(
        `DELETE FROM schedule_fires WHERE (schedule, fire_at) IN (
           SELECT schedule, fire_at FROM schedule_fires WHERE fire_at < $1 ORDER BY fire_at LIMIT $2)`,
        [p.before, p.limit],
      );
      return rowCount ?? 0;
    });
  }

  async prunedCounts(): Promise<PrunedCount[]> {
    const { rows } = await this.pool.query<{ type: string; state: string; count: number; last_pruned_at: number }>(
      'SELECT * FROM pruned_counts ORDER BY type, state',
    );
    return rows.map((r) => ({ type: r.type, state: r.state, count: r.count, lastPrunedAt: r.last_pruned_at }));
  }
}
