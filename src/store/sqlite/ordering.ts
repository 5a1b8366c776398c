/**
 * Per-key ordering on SQLite. A job with an ordering key gets the key's next
 * sequence number in the transaction that inserts it; a claim takes only the
 * head of each key: a job with no earlier job of its key still unfinished
 * (a dead one counts as unfinished unless it was enqueued with orderingOnDead 'skip').
 */
import type Database from 'better-sqlite3';
import type { JobRow } from './rows.ts';

/**
 * The claim condition for the `jobs` table of the enclosing query. A job cancelled while running holds its key
 * while its lease lasts: its handler hears of the cancel only at its next heartbeat, and the worker then ends
 * the lease (recordLeaseLost). `now` is the SQL of the caller's time; without one, any lease left holds the key
 * (nextRunAt has no clock; a claim, which has, decides).
 */
export const orderingHead = (now?: string) => `(jobs.ordering_key IS NULL OR NOT EXISTS (
  SELECT 1 FROM jobs prev
  WHERE prev.ordering_key = jobs.ordering_key AND prev.ordering_seq < jobs.ordering_seq
    AND (prev.state IN ('scheduled', 'available', 'running') OR (prev.state = 'dead' AND prev.ordering_on_dead = 'wait')
         OR (prev.state = 'cancelled' AND prev.lease_expires_at ${now ? `> ${now}` : 'IS NOT NULL'}))))`;

/** Gives a just-inserted job its key's next sequence number. Run inside the inserting transaction. */
export function orderJob(db: Database.Database, row: JobRow, key: string, onDead: 'wait' | 'skip'): JobRow {
  const { last_seq } = db
    .prepare(
      `INSERT INTO ordering_keys (key, last_seq) VALUES (?, 1)
       ON CONFLICT (key) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq`,
    )
    .get(key) as { last_seq: number };
  return db
    .prepare('UPDATE jobs SET ordering_key = ?, ordering_seq = ?, ordering_on_dead = ? WHERE id = ? RETURNING *')
    .get(key, last_seq, onDead, row.id) as JobRow;
}
