/** Rate-limit buckets and concurrency slots on SQLite; each check runs under the write lock. */
import type Database from 'better-sqlite3';
import { refill, take, type LimitStore, type SlotHolder, type SlotRequest, type TokenRequest } from '../limits.ts';
import { writeTransaction } from './write-lock.ts';

/** Slots whose job still runs under the token that took them. */
const LIVE = `EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.lease_token = s.token AND j.state = 'running')`;

export class SqliteLimitStore implements LimitStore {
  constructor(private readonly db: Database.Database) {}

  async takeTokens(r: TokenRequest, count: number) {
    return writeTransaction(this.db, () => {
      const row = this.db.prepare('SELECT tokens, updated_at FROM rate_buckets WHERE key = ?').get(r.key) as
        | { tokens: number; updated_at: number }
        | undefined;
      const t = take(row ? refill(row.tokens, row.updated_at, r) : r.max, r, count);
      this.db
        .prepare(
          `INSERT INTO rate_buckets (key, tokens, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
        )
        .run(r.key, t.tokens, Math.max(r.now, row?.updated_at ?? 0));
      return { taken: t.taken, waitMs: t.waitMs };
    });
  }

  async acquireSlots(r: SlotRequest): Promise<string[]> {
    const ids = JSON.stringify(r.holders.map((h) => Number(h.jobId)));
    return writeTransaction(this.db, () => {
      this.db.prepare(`DELETE FROM concurrency_slots AS s WHERE key = ? AND NOT ${LIVE}`).run(r.key);
      const { n } = this.db
        .prepare('SELECT count(*) AS n FROM concurrency_slots WHERE key = ? AND job_id NOT IN (SELECT value FROM json_each(?))')
        .get(r.key, ids) as { n: number };
      const granted = r.holders.slice(0, Math.max(0, r.max - n));
      const insert = this.db.prepare(
        `INSERT INTO concurrency_slots (key, job_id, token, acquired_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key, job_id) DO UPDATE SET token = excluded.token, acquired_at = excluded.acquired_at`,
      );
      for (const h of granted) insert.run(r.key, Number(h.jobId), h.token, r.now);
      return granted.map((h) => h.jobId);
    });
  }

  async releaseSlots(key: string, holders: SlotHolder[]): Promise<void> {
    const release = this.db.prepare(
      `DELETE FROM concurrency_slots WHERE key = ?
         AND (job_id, token) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`,
    );
    await writeTransaction(this.db, () => release.run(key, JSON.stringify(holders.map((h) => [Number(h.jobId), h.token]))));
  }

  async slotsInUse(): Promise<Record<string, number>> {
    const rows = this.db.prepare(`SELECT key, count(*) AS n FROM concurrency_slots AS s WHERE ${LIVE} GROUP BY key`).all() as { key: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  }
}
