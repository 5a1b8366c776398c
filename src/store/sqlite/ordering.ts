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
  return db
    .prepare('UPDATE jobs SET ordering_key = ?, ordering_seq = ?, ordering_on_dead = ? WHERE id = ? RETURNING *')
    .get(key, nextSeq(db, key), onDead, row.id) as JobRow;
}

function nextSeq(db: Database.Database, key: string): number {
  return db
    .prepare(
      `INSERT INTO ordering_keys (key, last_seq) VALUES (?, 1)
       ON CONFLICT (key) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq`,
    )
    .pluck()
    .get(key) as number;
}

/**
 * A dead 'skip' job of the selection (`where`, AND clauses on `jobs`) whose key went on without it, and still has a
 * later job unfinished (one may be running), gets its key's next sequence number: redriven in place it would be its
 * key's head beside that running job. Run inside the redriving transaction, before the redrive.
 */
export function moveSkippedBehindLater(db: Database.Database, where: string, params: unknown[]): void {
  const moving = db
    .prepare(
      `SELECT id, ordering_key FROM jobs WHERE state = 'dead' ${where} AND ordering_key IS NOT NULL AND ordering_on_dead = 'skip'
         AND EXISTS (${LATER_UNFINISHED}) ORDER BY ordering_key, ordering_seq`,
    )
    .all(...params) as { id: number; ordering_key: string }[];
  const renumber = db.prepare('UPDATE jobs SET ordering_seq = ? WHERE id = ?');
  for (const m of moving) renumber.run(nextSeq(db, m.ordering_key), m.id);
}

/** A later job of the enclosing query's `jobs` row's key is waiting, running, or cancelled with its handler not let go yet. */
const LATER_UNFINISHED = `SELECT 1 FROM jobs later WHERE later.ordering_key = jobs.ordering_key AND later.ordering_seq > jobs.ordering_seq
  AND (later.state IN ('scheduled', 'available', 'running') OR (later.state = 'cancelled' AND later.lease_expires_at IS NOT NULL))`;
