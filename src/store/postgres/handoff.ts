/** Hand-off on PostgreSQL (see ../handoff.ts). The pool's search_path is the store's schema. */
import type pg from 'pg';
import type { Job } from '../../job.ts';
import type { HandoffStore, JobOffer } from '../handoff.ts';
import { toJob, type JobRow } from './rows.ts';

/** Offers void for this long are deleted by the next offer anyone makes. */
const FORGET_AFTER_MS = 60_000;

export class PostgresHandoffStore implements HandoffStore {
  constructor(private readonly pool: pg.Pool) {}

  async offer(o: JobOffer): Promise<number> {
    const { rows } = await this.pool.query<{ handed: number }>(
      `WITH forgotten AS (DELETE FROM job_offers WHERE expires_at < $7::bigint - ${FORGET_AFTER_MS} AND worker_id <> $1)
       INSERT INTO job_offers (worker_id, queues, types, slots, lease_ms, expires_at, listener_pid)
       VALUES ($1, $2, $3, $4, $5, $7::bigint + $6::bigint, $8)
       ON CONFLICT (worker_id) DO UPDATE
         SET queues = excluded.queues, types = excluded.types, slots = excluded.slots, lease_ms = excluded.lease_ms,
             expires_at = excluded.expires_at, listener_pid = excluded.listener_pid
       RETURNING handed`,
      [o.workerId, o.queues, o.types, o.slots, o.leaseMs, o.ttlMs, o.now, o.listener],
    );
    return rows[0].handed;
  }

  async withdraw(workerId: string): Promise<number> {
    // Waits for an enqueue that holds the offer's row: its hand-off has committed once this returns.
    const { rows } = await this.pool.query<{ handed: number }>('DELETE FROM job_offers WHERE worker_id = $1 RETURNING handed', [workerId]);
    return rows[0]?.handed ?? 0;
  }

  async handedJobs(workerId: string, select: { only?: string[]; except: string[] }): Promise<Job[]> {
    const only = select.only?.filter((id) => /^\d+$/.test(id)).map(Number) ?? null;
    if (only && only.length === 0) return [];
    // A handed job runs under token 1 (its first lease); a higher token is a later claim's, not a hand-off.
    const { rows } = await this.pool.query<JobRow>(
      `SELECT * FROM jobs
       WHERE state = 'running' AND lease_owner = $1 AND lease_token = 1
         AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[])) AND id <> ALL($3::bigint[])
       ORDER BY id`,
      [workerId, only, select.except.filter((id) => /^\d+$/.test(id)).map(Number)],
    );
    return rows.map(toJob);
  }
}
