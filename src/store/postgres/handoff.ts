/** Hand-off on PostgreSQL (see ../handoff.ts). The pool's search_path is the store's schema. */
import type pg from 'pg';
import type { Job } from '../../job.ts';
import type { HandoffStore, JobOffer } from '../handoff.ts';
import { toJob, type JobRow } from './rows.ts';

/**
 * A worker's LISTEN connection holds a session lock keyed by its own backend pid (`holdListenerLock`) for as
 * long as it lives, and an enqueue hands jobs only to an offer whose listener's lock is held
 * (`LISTENER_ALIVE`): the server releases a session's locks when the session ends, however it ends. A pid
 * that a new connection reuses is not a listener unless that connection takes the lock. Cheaper than looking
 * the pid up in the server's table of backends (`pg_stat_get_activity` copies every backend's entry each
 * transaction: 0.1-0.6 ms of a hand-off's 1.0-1.6 ms, measured in 2026-12-02's session). Locks keyed by two
 * int4 values do not share a key space with Rebound's other advisory locks, keyed by one bigint.
 */
export const LISTENER_LOCK_CLASS = 1380077124; // 'RBND'

/** Makes a connection a listener that offers can name: call it on the LISTEN connection, once per session. */
export async function holdListenerLock(c: pg.ClientBase): Promise<number> {
  const { rows } = await c.query<{ pid: number }>(
    `SELECT pg_backend_pid() AS pid, pg_advisory_lock(${LISTENER_LOCK_CLASS}, pg_backend_pid())`,
  );
  return rows[0].pid;
}

/**
 * SQL true while the listener with backend pid `pidSql` lives: its lock cannot be shared. Where it is gone,
 * the check takes a shared lock on its key until the transaction ends, which blocks nobody but a new session
 * with the same pid taking the lock, and only until then.
 */
export const LISTENER_ALIVE = (pidSql: string): string => `NOT pg_try_advisory_xact_lock_shared(${LISTENER_LOCK_CLASS}, ${pidSql})`;

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
