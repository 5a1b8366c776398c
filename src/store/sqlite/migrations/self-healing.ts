/** SQLite schema of the self-healing runtime: versions 10-19. */
import type { Migration } from './index.ts';

export const selfHealingMigrations: Migration[] = [
  {
    version: 10,
    name: 'circuit breakers and their state changes',
    sql: `
      CREATE TABLE breakers (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        forced TEXT,
        data TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE breaker_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        at INTEGER NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL
      );
      CREATE INDEX breaker_events_name ON breaker_events (name, id);
    `,
  },
  {
    version: 11,
    name: 'rate-limit buckets and concurrency slots',
    sql: `
      CREATE TABLE rate_buckets (
        key TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE concurrency_slots (
        key TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        token INTEGER NOT NULL,
        acquired_at INTEGER NOT NULL,
        PRIMARY KEY (key, job_id)
      );
    `,
  },
];
