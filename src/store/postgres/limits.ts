/** Rate-limit buckets and concurrency slots on PostgreSQL: a row lock per bucket, an advisory lock per slot key. */
import type pg from 'pg';
import { SHARED_LOCK_IDLE_TIMEOUT_MS, withTransaction } from './transaction.ts';
import { refill, take, type LimitStore, type SlotRequest, type TokenRequest } from '../limits.ts';

/** Slots whose job still runs under the token that took them. */
const LIVE = `EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.lease_token = s.token AND j.state = 'running')`;

export class PostgresLimitStore implements LimitStore {
  /** `pool` runs with search_path set to the store's schema. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn, { idleTimeoutMs: SHARED_LOCK_IDLE_TIMEOUT_MS });
  }

  async takeTokens(r: TokenRequest, count: number) {
    return this.tx(async (c) => {
      await c.query('INSERT INTO rate_buckets (key, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING', [r.key, r.max, r.now]);
      const { rows } = await c.query<{ tokens: number; updated_at: number }>('SELECT tokens, updated_at FROM rate_buckets WHERE key = $1 FOR UPDATE', [r.key]);
      const t = take(refill(rows[0].tokens, rows[0].updated_at, r), r, count);
      await c.query('UPDATE rate_buckets SET tokens = $2, updated_at = $3 WHERE key = $1', [r.key, t.tokens, Math.max(r.now, rows[0].updated_at)]);
      return { taken: t.taken, waitMs: t.waitMs };
    });
  }

  async acquireSlots(r: SlotRequest): Promise<string[]> {
    const ids = r.holders.map((h) => Number(h.jobId));
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rebound:${this.schema}:slot:${r.key}`]);
      await c.query(`DELETE FROM concurrency_slots s WHERE key = $1 AND NOT ${LIVE}`, [r.key]);
      const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM concurrency_slots WHERE key = $1 AND job_id <> ALL($2::bigint[])', [r.key, ids]);
      const granted = r.holders.slice(0, Math.max(0, r.max - rows[0].n));
      if (granted.length === 0) return [];
      await c.query(
        `INSERT INTO concurrency_slots (key, job_id, token, acquired_at)
         SELECT $1, job_id, token, $4 FROM unnest($2::bigint[], $3::bigint[]) AS h (job_id, token)
         ON CONFLICT (key, job_id) DO UPDATE SET token = excluded.token, acquired_at = excluded.acquired_at`,
        [r.key, granted.map((h) => Number(h.jobId)), granted.map((h) => h.token), r.now],
      );
      return granted.map((h) => h.jobId);
    });
  }

  async releaseSlots(key: string, jobIds: string[]): Promise<void> {
    await this.pool.query('DELETE FROM concurrency_slots WHERE key = $1 AND job_id = ANY($2::bigint[])', [key, jobIds.map(Number)]);
  }

  async slotsInUse(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ key: string; n: number }>(`SELECT key, count(*) AS n FROM concurrency_slots s WHERE ${LIVE} GROUP BY key`);
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  }
}
