/**
 * Rate-limit buckets and concurrency slots on PostgreSQL: a row lock per bucket, an advisory lock per slot key,
 * each taken inside one statement, so a key is never locked across round trips to a client (a busy or frozen
 * process would make every process sharing the key wait for it).
 */
import type pg from 'pg';
import { take, type LimitStore, type SlotHolder, type SlotRequest, type TokenRequest } from '../limits.ts';

/** Slots whose job still runs under the token that took them (acquire_concurrency_slots, migration 12, tests the same). */
const LIVE = `EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.lease_token = s.token AND j.state = 'running')`;

/** `refill` and `take` (store/limits.ts) in SQL, so the bucket is read, refilled and taken from in one statement. */
const TAKE_TOKENS = `
  WITH bucket AS (
    SELECT tokens, updated_at FROM rate_buckets WHERE key = $1 FOR UPDATE
  ), refilled AS (
    SELECT least($2::float8, tokens + greatest(0, $4::bigint - updated_at) * $2::float8 / $3::float8) AS refilled, updated_at FROM bucket
  ), taken AS (
    UPDATE rate_buckets b SET tokens = f.refilled - greatest(0, least($5::int, floor(f.refilled))), updated_at = greatest($4::bigint, f.updated_at)
    FROM refilled f WHERE b.key = $1
  )
  SELECT refilled FROM refilled`;

export class PostgresLimitStore implements LimitStore {
  /** `pool` runs with search_path set to the store's schema. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  async takeTokens(r: TokenRequest, count: number) {
    // FOR UPDATE waits for a concurrent taker, then reads the bucket as that taker left it.
    const values = [r.key, r.max, r.perMs, r.now, count];
    let { rows } = await this.pool.query<{ refilled: number }>({ name: 'rebound_take_tokens', text: TAKE_TOKENS, values });
    if (!rows[0]) {
      await this.pool.query('INSERT INTO rate_buckets (key, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING', [r.key, r.max, r.now]);
      ({ rows } = await this.pool.query<{ refilled: number }>({ name: 'rebound_take_tokens', text: TAKE_TOKENS, values }));
    }
    const t = take(rows[0].refilled, r, count);
    return { taken: t.taken, waitMs: t.waitMs };
  }

  async acquireSlots(r: SlotRequest): Promise<string[]> {
    // The advisory lock and the count are in one function (migration 12): see there.
    const { rows } = await this.pool.query<{ id: string }>({
      name: 'rebound_acquire_slots',
      text: 'SELECT id::text FROM acquire_concurrency_slots($1, $2, $3, $4::bigint[], $5::bigint[], $6) AS id',
      values: [r.key, `rebound:${this.schema}:slot:${r.key}`, r.max, r.holders.map((h) => Number(h.jobId)), r.holders.map((h) => h.token), r.now],
    });
    const granted = new Set(rows.map((row) => row.id));
    return r.holders.filter((h) => granted.has(h.jobId)).map((h) => h.jobId);
  }

  async releaseSlots(key: string, holders: SlotHolder[]): Promise<void> {
    await this.pool.query(
      'DELETE FROM concurrency_slots s USING unnest($2::bigint[], $3::bigint[]) AS h (job_id, token) WHERE s.key = $1 AND s.job_id = h.job_id AND s.token = h.token',
      [key, holders.map((h) => Number(h.jobId)), holders.map((h) => h.token)],
    );
  }

  async slotsInUse(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ key: string; n: number }>(`SELECT key, count(*) AS n FROM concurrency_slots s WHERE ${LIVE} GROUP BY key`);
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  }
}
