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
];
