/** Queue depth and lag counts on PostgreSQL. */
import type pg from 'pg';
import type { BacklogStore, DeadCounts, QueueCounts } from '../backlog.ts';

interface Row {
  queue: string;
  waiting: number;
  scheduled: number;
  running: number;
  oldest_due_at: number | null;
  arrived: number;
  completed: number;
  failed: number;
}

export class PostgresBacklogStore implements BacklogStore {
  /** `pool` runs with search_path set to the store's schema. */
  constructor(private readonly pool: pg.Pool) {}

  async depth(queue: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      "SELECT count(*) AS n FROM jobs WHERE queue = $1 AND state IN ('available', 'scheduled')",
      [queue],
    );
    return rows[0].n;
  }

  async queueCounts(now: number, since: number): Promise<QueueCounts[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT queue,
         count(*) FILTER (WHERE state IN ('available', 'scheduled') AND run_at <= $1) AS waiting,
         count(*) FILTER (WHERE state IN ('available', 'scheduled') AND run_at > $1) AS scheduled,
         count(*) FILTER (WHERE state = 'running') AS running,
         min(run_at) FILTER (WHERE state IN ('available', 'scheduled') AND run_at <= $1) AS oldest_due_at,
         count(*) FILTER (WHERE created_at >= $2) AS arrived,
         count(*) FILTER (WHERE state = 'completed' AND finished_at >= $2) AS completed,
         count(*) FILTER (WHERE state IN ('dead', 'cancelled') AND finished_at >= $2) AS failed
       FROM jobs GROUP BY queue ORDER BY queue`,
      [now, since],
    );
    return rows.map((r) => ({
      queue: r.queue,
      waiting: r.waiting,
      scheduled: r.scheduled,
      running: r.running,
      oldestDueAt: r.oldest_due_at,
      arrived: r.arrived,
      completed: r.completed,
      failed: r.failed,
    }));
  }

  async deadCounts(since: number, type?: string): Promise<DeadCounts> {
    const { rows } = await this.pool.query<{ total: number; recent: number; oldest_at: number | null }>(
      `SELECT count(*) AS total, count(*) FILTER (WHERE finished_at >= $1) AS recent, min(finished_at) AS oldest_at
       FROM jobs WHERE state = 'dead' AND ($2::text IS NULL OR type = $2)`,
      [since, type ?? null],
    );
    return { total: rows[0].total, recent: rows[0].recent, oldestAt: rows[0].oldest_at };
  }
}
