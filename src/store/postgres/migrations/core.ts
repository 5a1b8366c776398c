/**
 * PostgreSQL schema, as numbered migrations run inside the configured schema
 * (search_path is set to it). Append new versions; never edit an applied one.
 * Times are epoch milliseconds (bigint), so every store compares the same numbers.
 */
import type { Migration } from './index.ts';

/** Versions 1-9: the core engine. */
export const coreMigrations: Migration[] = [
  {
    version: 1,
    name: 'jobs, events and once-results',
    sql: `
      CREATE TABLE jobs (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        queue text NOT NULL,
        payload jsonb NOT NULL,
        payload_hash text NOT NULL,
        priority integer NOT NULL DEFAULT 0,
        run_at bigint NOT NULL,
        state text NOT NULL,
        attempt integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL,
        crash_count integer NOT NULL DEFAULT 0,
        lease_owner text,
        lease_token integer NOT NULL DEFAULT 0,
        lease_expires_at bigint,
        idempotency_key text,
        key_ttl_ms bigint NOT NULL,
        key_expires_at bigint,
        result jsonb,
        last_error jsonb,
        dead_reason text,
        error_fingerprint text,
        parent_id bigint,
        created_at bigint NOT NULL,
        started_at bigint,
        finished_at bigint
      );
      CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
      -- Ordered like the claim, so a claim reads only the rows it takes, however long the backlog.
      CREATE INDEX jobs_claim ON jobs (priority, run_at, id) WHERE state IN ('available', 'scheduled');
      CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
      CREATE INDEX jobs_dead_fingerprint ON jobs (error_fingerprint) WHERE state = 'dead';
      CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;

      CREATE TABLE job_events (
        id bigserial PRIMARY KEY,
        job_id bigint NOT NULL,
        at bigint NOT NULL,
        kind text NOT NULL,
        attempt integer NOT NULL,
        worker text,
        data jsonb
      );
      CREATE INDEX job_events_job ON job_events (job_id, id);

      CREATE TABLE job_once (
        job_id bigint NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (job_id, key)
      );

      -- Wake idle workers when work arrives: one notification per queue per statement.
      CREATE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, q.queue)
          FROM (SELECT DISTINCT queue FROM new_rows WHERE state = 'available') q;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_inserted AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_jobs_inserted();
    `,
  },
  {
    version: 2,
    name: 'suspects of a shared crash run alone',
    sql: `
      ALTER TABLE jobs ADD COLUMN isolate boolean NOT NULL DEFAULT false;
      CREATE INDEX jobs_isolated ON jobs (run_at) WHERE isolate AND state IN ('available', 'scheduled');
    `,
  },
  {
    version: 3,
    name: 'idle workers offer slots; an enqueue hands its jobs over (store/handoff.ts)',
    sql: `
      -- One row per idle worker. \`handed\` counts every job ever handed to it, so the worker can tell
      -- when a notification went missing. \`listener_pid\` is the backend of the worker's LISTEN connection:
      -- an enqueue hands nothing to an offer whose listener is gone (the worker died or lost its connection).
      CREATE TABLE job_offers (
        worker_id text PRIMARY KEY,
        listener_pid integer NOT NULL,
        queues text[] NOT NULL,
        types text[] NOT NULL,
        slots integer NOT NULL,
        lease_ms bigint NOT NULL,
        expires_at bigint NOT NULL,
        handed bigint NOT NULL DEFAULT 0
      );
      -- A job inserted already running was handed to the worker that leases it: tell that worker which job
      -- ('@<id> <worker>'); jobs inserted available wake every worker of their queue, as before.
      CREATE OR REPLACE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, q.payload)
          FROM (SELECT DISTINCT CASE WHEN state = 'running' THEN '@' || id || ' ' || lease_owner ELSE queue END AS payload
                FROM new_rows WHERE state IN ('available', 'running')) q;
        RETURN NULL;
      END $$;
    `,
  },
  {
    version: 4,
    name: 'a hand-off notification carries its job',
    sql: `
      -- A handed job's notification carries the job itself, '#{"w": <worker>, "j": <row>}', so its worker
      -- starts it without reading it back (a third off the pickup's p50). A row too large for a notification
      -- (8,000 bytes at most) is named as before, '@<id> <worker>', and the worker reads it by id.
      CREATE OR REPLACE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, q.queue)
          FROM (SELECT DISTINCT queue FROM new_rows WHERE state = 'available') q;
        PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA,
                          CASE WHEN octet_length(h.message) < 7500 THEN h.message ELSE '@' || h.id || ' ' || h.lease_owner END)
          FROM (SELECT n.id, n.lease_owner, '#' || json_build_object('w', n.lease_owner, 'j', row_to_json(n))::text AS message
                FROM new_rows n WHERE n.state = 'running') h;
        RETURN NULL;
      END $$;
    `,
  },
  {
    version: 5,
    name: 'room on each page for a job\'s next versions',
    sql: `
      -- Every job row is written three times (inserted, claimed, completed), and each update writes a new
      -- version of the row. A page filled to the brim sends each new version to another page, most often one
      -- the table must grow for (claims and completions then queue on the relation's extension lock) and
      -- whose first change after a checkpoint is a whole page in the WAL. Half of each page left free keeps
      -- a claimed job's new version beside the old one, and the completion's once the old one is pruned.
      -- In fresh 20,000-job drains PostgreSQL spent 6 % less CPU and the drain was 4 % faster (ten
      -- alternated pairs, faster in all ten; docs/benchmarks-log.md); a third of each page measured the same
      -- as half, with a larger table and a slower bulk load.
      ALTER TABLE jobs SET (fillfactor = 50);
    `,
  },
  {
    version: 6,
    name: 'room on each primary key page for a job\'s next versions',
    sql: `
      -- A claim and a completion change indexed columns, so each new version of a row also gets its own
      -- primary key entry, beside the old one's. Leaves packed to 90 % (ids only grow, so each leaf is left
      -- as full as the fillfactor allows) split to make room; half-full leaves take both versions' entries.
      -- Twenty alternated pairs of fresh 20,000-job drains: PostgreSQL's CPU 5 % lower, the drain 2 % faster
      -- (faster in 13), the bulk load the same (docs/benchmarks-log.md).
      ALTER INDEX jobs_pkey SET (fillfactor = 50);
    `,
  },
  {
    version: 7,
    name: 'rescues by lease owner',
    sql: `
      -- The rescue asks when a lease owner last lost a job (src/store/alone-on-worker.ts); job_events is large.
      CREATE INDEX job_events_lease_expired ON job_events (worker, at) WHERE kind = 'lease_expired';
    `,
  },
  {
    version: 8,
    name: 'hand-off notifications on their own channel',
    sql: `
      -- On the wake channel a queue named like a hand-off ('@1 x', '#{...}'; a queue's name is any text) was read as
      -- one and woke nobody. Hand-offs now go on 'rebound:<schema>', the wake channel's length, so a schema name
      -- short enough for one is short enough for the other; the wake channel carries only queue names (and '*').
      CREATE OR REPLACE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, q.queue)
          FROM (SELECT DISTINCT queue FROM new_rows WHERE state = 'available') q;
        PERFORM pg_notify('rebound:' || TG_TABLE_SCHEMA,
                          CASE WHEN octet_length(h.message) < 7500 THEN h.message ELSE '@' || h.id || ' ' || h.lease_owner END)
          FROM (SELECT n.id, n.lease_owner, '#' || json_build_object('w', n.lease_owner, 'j', row_to_json(n))::text AS message
                FROM new_rows n WHERE n.state = 'running') h;
        RETURN NULL;
      END $$;
    `,
  },
];
