/**
 * SQLite schema, as numbered migrations. Append new versions; never edit an applied one.
 * Times are epoch milliseconds; JSON is stored as text.
 */
import type { Migration } from './index.ts';

/** Versions 1-9: the core engine. */
export const coreMigrations: Migration[] = [
  {
    version: 1,
    name: 'jobs, events and once-results',
    sql: `
      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        payload_hash TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        run_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        crash_count INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_token INTEGER NOT NULL DEFAULT 0,
        lease_expires_at INTEGER,
        idempotency_key TEXT,
        key_ttl_ms INTEGER NOT NULL,
        key_expires_at INTEGER,
        result TEXT,
        last_error TEXT,
        dead_reason TEXT,
        error_fingerprint TEXT,
        parent_id INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
      );
      CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
      -- Ordered like the claim, so a claim reads only the rows it takes, however long the backlog.
      CREATE INDEX jobs_claim ON jobs (priority, run_at, id) WHERE state IN ('available', 'scheduled');
      CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
      CREATE INDEX jobs_dead_fingerprint ON jobs (error_fingerprint) WHERE state = 'dead';
      CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;

      CREATE TABLE job_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        worker TEXT,
        data TEXT
      );
      CREATE INDEX job_events_job ON job_events (job_id, id);

      CREATE TABLE job_once (
        job_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (job_id, key)
      );
    `,
  },
  {
    version: 2,
    name: 'suspects of a shared crash run alone',
    sql: `
      ALTER TABLE jobs ADD COLUMN isolate INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX jobs_isolated ON jobs (run_at) WHERE isolate = 1 AND state IN ('available', 'scheduled');
    `,
  },
  {
    version: 3,
    name: 'rescues by lease owner',
    sql: `
      -- The rescue asks when a lease owner last lost a job (src/store/alone-on-worker.ts); job_events is large.
      CREATE INDEX job_events_lease_expired ON job_events (worker, at) WHERE kind = 'lease_expired';
    `,
  },
];
