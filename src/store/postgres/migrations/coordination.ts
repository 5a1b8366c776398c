/** Versions 30-39: coordination (leases for leader election and locks, schedules and their fires, retention counts). */
import type { Migration } from './index.ts';

export const coordinationMigrations: Migration[] = [
  {
    version: 30,
    name: 'leases, schedules, schedule fires, pruned counts',
    sql: `
      CREATE TABLE coordination_leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        token bigint NOT NULL,
        expires_at bigint NOT NULL,
        acquired_at bigint NOT NULL
      );

      CREATE TABLE schedules (
        name text PRIMARY KEY,
        cron text NOT NULL,
        tz text NOT NULL,
        type text NOT NULL,
        payload jsonb NOT NULL,
        misfire text NOT NULL,
        jitter_ms bigint NOT NULL,
        source text NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        version bigint NOT NULL DEFAULT 1,
        next_fire_at bigint,
        last_fire_at bigint,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );

      -- One row per fire time: the uniqueness that makes each fire produce exactly one job.
      CREATE TABLE schedule_fires (
        schedule text NOT NULL,
        fire_at bigint NOT NULL,
        job_id bigint NOT NULL,
        term bigint NOT NULL,
        fired_at bigint NOT NULL,
        PRIMARY KEY (schedule, fire_at)
      );
      CREATE INDEX schedule_fires_at ON schedule_fires (fire_at);

      CREATE TABLE pruned_counts (
        type text NOT NULL,
        state text NOT NULL,
        count bigint NOT NULL,
        last_pruned_at bigint NOT NULL,
        PRIMARY KEY (type, state)
      );
      CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE state IN ('completed', 'dead', 'cancelled');
      CREATE INDEX jobs_key_expiry ON jobs (key_expires_at) WHERE idempotency_key IS NOT NULL AND key_expires_at IS NOT NULL;
    `,
  },
  {
    version: 31,
    name: 'schedule versions from one sequence',
    sql: `
      -- Every schedule version is drawn from this sequence, so a schedule removed and added again under its name
      -- never gets a version its first incarnation had: a fire pass that read the removed one writes nothing.
      CREATE SEQUENCE schedule_versions;
      SELECT setval('schedule_versions', (SELECT coalesce(max(version), 0) + 1 FROM schedules), false);
    `,
  },
  {
    version: 32,
    name: 'the finished jobs index covers compensated jobs',
    sql: `
      -- Retention prunes compensated workflows too; the index left them out, so each pass read the whole jobs table
      -- for them. Keyed as on SQLite (its migration 31): every final state has a finished_at.
      DROP INDEX jobs_finished;
      CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
    `,
  },
];
