/** Queue depth and lag counts on SQLite. */
import type Database from 'better-sqlite3';
import type { BacklogStore, DeadCounts, QueueCounts } from '../backlog.ts';

interface Row {
  queue: string;
  waiting: number | null;
  scheduled: number | null;
  running: number | null;
  oldest_due_at: number | null;
  arrived: number | null;
  completed: number | null;
  failed: number | null;
}

export class SqliteBacklogStore implements BacklogStore {
  constructor(private readonly db: Database.Database) {}

  async depth(queue: string): Promise<number> {
    const row = this.db
      .prepare("SELECT count(*) AS n FROM jobs WHERE queue = ? AND state IN ('available', 'scheduled')")
      .get(queue) as { n: number };
    return row.n;
  }

  async queueCounts(now: number, since: number): Promise<QueueCounts[]> {
    const rows = this.db
      .prepare(
        `SELECT queue,
           sum(CASE WHEN state IN ('available', 'scheduled') AND run_at <= @now THEN 1 ELSE 0 END) AS waiting,
           sum(CASE WHEN state IN ('available', 'scheduled') AND run_at > @now THEN 1 ELSE 0 END) AS scheduled,
           sum(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS running,
           min(CASE WHEN state IN ('available', 'scheduled') AND run_at <= @now THEN run_at END) AS oldest_due_at,
           sum(CASE WHEN created_at >= @since THEN 1 ELSE 0 END) AS arrived,
           sum(CASE WHEN state = 'completed' AND finished_at >= @since THEN 1 ELSE 0 END) AS completed,
           sum(CASE WHEN state IN ('dead', 'cancelled') AND finished_at >= @since THEN 1 ELSE 0 END) AS failed
         FROM jobs GROUP BY queue ORDER BY queue`,
      )
      .all({ now, since }) as Row[];
    return rows.map((r) => ({
      queue: r.queue,
      waiting: r.waiting ?? 0,
      scheduled: r.scheduled ?? 0,
      running: r.running ?? 0,
      oldestDueAt: r.oldest_due_at,
      arrived: r.arrived ?? 0,
      completed: r.completed ?? 0,
      failed: r.failed ?? 0,
    }));
  }

  async deadCounts(since: number, type?: string): Promise<DeadCounts> {
    const row = this.db
      .prepare(
        `SELECT count(*) AS total, sum(CASE WHEN finished_at >= ? THEN 1 ELSE 0 END) AS recent, min(finished_at) AS oldest_at
         FROM jobs WHERE state = 'dead' AND (? IS NULL OR type = ?)`,
      )
      .get(since, type ?? null, type ?? null) as { total: number; recent: number | null; oldest_at: number | null };
    return { total: row.total, recent: row.recent ?? 0, oldestAt: row.oldest_at };
  }
}
