/** Versions 30-39: coordination (leases for leader election and locks, schedules and their fires, retention counts). */
import type { Migration } from './index.ts';

export const coordinationMigrations: Migration[] = [
  {
    version: 30,
    name: 'leases, schedules, schedule fires, pruned counts',
    sql: `
      CREATE TABLE coordination_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        acquired_at INTEGER NOT NULL
      );

      CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        misfire TEXT NOT NULL,
        jitter_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        next_fire_at INTEGER,
        last_fire_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      -- One row per fire time: the uniqueness that makes each fire produce exactly one job.
      CREATE TABLE schedule_fires (
        schedule TEXT NOT NULL,
        fire_at INTEGER NOT NULL,
        job_id INTEGER NOT NULL,
        term INTEGER NOT NULL,
        fired_at INTEGER NOT NULL,
        PRIMARY KEY (schedule, fire_at)
      );
      CREATE INDEX schedule_fires_at ON schedule_fires (fire_at);

      CREATE TABLE pruned_counts (
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_pruned_at INTEGER NOT NULL,
        PRIMARY KEY (type, state)
      );
      CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE state IN ('completed', 'dead', 'cancelled');
      CREATE INDEX jobs_key_expiry ON jobs (key_expires_at) WHERE idempotency_key IS NOT NULL AND key_expires_at IS NOT NULL;
    `,
  },
  {
    version: 31,
    name: 'the finished jobs index, keyed on finished_at',
    sql: `
      -- The same keys for the retention purge (state, then oldest finished first), but a condition the claim cannot
      -- change: a claim leaves finished_at alone, so SQLite skips this index without evaluating a list of states for
      -- the old and the new row. A claim and its completion cost about 1.6 µs a job less (docs/benchmarks-log.md, sixteenth session).
      DROP INDEX jobs_finished;
      CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
    `,
  },
  {
    version: 32,
    name: 'schedule versions from one counter',
    sql: `
      -- Every schedule version is drawn from this counter, so a schedule removed and added again under its name
      -- never gets a version its first incarnation had: a fire pass that read the removed one writes nothing.
      CREATE TABLE schedule_versions (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
      INSERT INTO schedule_versions (id, last) SELECT 1, coalesce(max(version), 0) FROM schedules;
    `,
  },
];
