/** PostgreSQL schema of the self-healing runtime: versions 10-19 (run with search_path set to the schema). */
import type { Migration } from './index.ts';

export const selfHealingMigrations: Migration[] = [
  {
    version: 10,
    name: 'circuit breakers and their state changes',
    sql: `
      CREATE TABLE breakers (
        name text PRIMARY KEY,
        state text NOT NULL,
        forced text,
        data jsonb NOT NULL,
        updated_at bigint NOT NULL
      );
      CREATE TABLE breaker_events (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        at bigint NOT NULL,
        from_state text NOT NULL,
        to_state text NOT NULL,
        reason text NOT NULL,
        actor text NOT NULL
      );
      CREATE INDEX breaker_events_name ON breaker_events (name, id);
    `,
  },
  {
    version: 11,
    name: 'rate-limit buckets and concurrency slots',
    sql: `
      CREATE TABLE rate_buckets (
        key text PRIMARY KEY,
        tokens double precision NOT NULL,
        updated_at bigint NOT NULL
      );
      CREATE TABLE concurrency_slots (
        key text NOT NULL,
        job_id bigint NOT NULL,
        token bigint NOT NULL,
        acquired_at bigint NOT NULL,
        PRIMARY KEY (key, job_id)
      );
    `,
  },
  {
    version: 12,
    name: 'concurrency slots granted in one statement',
    sql: `
      -- The slots a process's starting jobs ask for under one key, granted in one call (store/postgres/limits.ts):
      -- the key's lock is held while PostgreSQL runs the call, not across round trips to a busy client. Each
      -- statement of a function reads a fresh snapshot, so the count sees every grant committed before the
      -- lock was ours. The lock is the one the earlier transaction took, so processes of both kinds agree.
      CREATE FUNCTION acquire_concurrency_slots(p_key text, p_lock text, p_max int, p_jobs bigint[], p_tokens bigint[], p_now bigint)
      RETURNS SETOF bigint LANGUAGE plpgsql AS $$
      DECLARE
        held int;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext(p_lock));
        -- Slots whose job no longer runs under the token that took them are free again.
        DELETE FROM concurrency_slots s WHERE s.key = p_key
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.lease_token = s.token AND j.state = 'running');
        SELECT count(*) INTO held FROM concurrency_slots s WHERE s.key = p_key AND s.job_id <> ALL (p_jobs);
        RETURN QUERY
          INSERT INTO concurrency_slots AS s (key, job_id, token, acquired_at)
          SELECT p_key, h.job_id, h.token, p_now FROM unnest(p_jobs, p_tokens) WITH ORDINALITY AS h (job_id, token, n)
          WHERE h.n <= p_max - held
          ON CONFLICT (key, job_id) DO UPDATE SET token = excluded.token, acquired_at = excluded.acquired_at
          RETURNING s.job_id;
      END $$;
    `,
  },
];
