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
];
