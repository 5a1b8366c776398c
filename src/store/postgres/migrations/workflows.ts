/**
 * Versions 20-29: durable workflows (runs, step history, signals, the wake of
 * a parent whose child finished) and per-key ordering of jobs.
 */
import type { Migration } from './index.ts';

const FINAL = `('completed', 'dead', 'cancelled', 'compensated')`;

export const workflowMigrations: Migration[] = [
  {
    version: 20,
    name: 'workflow runs, steps and signals',
    sql: `
      CREATE TABLE workflow_runs (
        job_id bigint PRIMARY KEY,
        type text NOT NULL,
        version integer NOT NULL,
        status text NOT NULL,
        state text,
        waiting text,
        error jsonb,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );
      CREATE TABLE workflow_steps (
        job_id bigint NOT NULL,
        seq integer NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL,
        result jsonb,
        error jsonb,
        attempts integer NOT NULL,
        wake_at bigint,
        started_at bigint NOT NULL,
        finished_at bigint,
        compensation text NOT NULL DEFAULT 'none',
        compensation_attempts integer NOT NULL DEFAULT 0,
        compensation_error jsonb,
        PRIMARY KEY (job_id, seq)
      );
      CREATE TABLE workflow_signals (
        id bigserial PRIMARY KEY,
        job_id bigint NOT NULL,
        name text NOT NULL,
        payload jsonb NOT NULL,
        created_at bigint NOT NULL,
        consumed_by integer
      );
      CREATE INDEX workflow_signals_job ON workflow_signals (job_id, name, id);

      -- A finished child wakes its parent at once when the parent sleeps in ctx.join(),
      -- in the same transaction as the child's last transition. A parent row locked by another
      -- transaction is skipped (no lock-order deadlocks between completion batches): that one is waking it,
      -- or the parent is going to sleep and its own check below (or its re-check timer) catches the child.
      CREATE FUNCTION workflow_child_finished() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE woke integer;
      BEGIN
        EXECUTE format(
          'UPDATE %1$I.jobs SET state = ''available'', run_at = LEAST(run_at, COALESCE($2, run_at))
           WHERE id = (SELECT id FROM %1$I.jobs WHERE id = $1 AND state = ''scheduled'' FOR UPDATE SKIP LOCKED)
             AND EXISTS (SELECT 1 FROM %1$I.workflow_runs r WHERE r.job_id = $1 AND r.waiting = ''children'')',
          TG_TABLE_SCHEMA) USING NEW.parent_id, NEW.finished_at;
        GET DIAGNOSTICS woke = ROW_COUNT;
        IF woke > 0 THEN PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, '*'); END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_child_finished AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (NEW.parent_id IS NOT NULL AND NEW.state IN ${FINAL} AND OLD.state NOT IN ${FINAL})
        EXECUTE FUNCTION workflow_child_finished();

      -- A workflow going to sleep on children or a signal that arrived while it was still running
      -- (after it looked, before it slept) is made due again at once: no wake-up is missed.
      CREATE FUNCTION workflow_sleep_missed_wake() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE woke integer;
      BEGIN
        EXECUTE format(
          'UPDATE %1$I.jobs SET state = ''available'', run_at = LEAST(run_at, COALESCE($2, run_at))
           WHERE id = $1 AND state = ''scheduled'' AND EXISTS (
             SELECT 1 FROM %1$I.workflow_runs r WHERE r.job_id = $1 AND (
               (r.waiting = ''children'' AND EXISTS (
                  SELECT 1 FROM %1$I.jobs c WHERE c.parent_id = $1 AND c.state IN ${FINAL.replace(/'/g, "''")} AND c.finished_at >= $2))
               OR (r.waiting LIKE ''signal:%%'' AND EXISTS (
                  SELECT 1 FROM %1$I.workflow_signals s
                  WHERE s.job_id = $1 AND s.consumed_by IS NULL AND ''signal:'' || s.name = r.waiting))))',
          TG_TABLE_SCHEMA) USING NEW.id, NEW.started_at;
        GET DIAGNOSTICS woke = ROW_COUNT;
        IF woke > 0 THEN PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, '*'); END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_sleep_missed_wake AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (OLD.state = 'running' AND NEW.state = 'scheduled')
        EXECUTE FUNCTION workflow_sleep_missed_wake();
    `,
  },
  {
    version: 21,
    name: 'per-key ordering of jobs',
    sql: `
      ALTER TABLE jobs ADD COLUMN ordering_key text;
      ALTER TABLE jobs ADD COLUMN ordering_seq bigint;
      ALTER TABLE jobs ADD COLUMN ordering_on_dead text;
      CREATE INDEX jobs_ordering ON jobs (ordering_key, ordering_seq) WHERE ordering_key IS NOT NULL;
      CREATE TABLE ordering_keys (key text PRIMARY KEY, last_seq bigint NOT NULL);
    `,
  },
  {
    version: 22,
    name: 'workflow records go with their job',
    sql: `
      -- Jobs deleted by a purge or by retention take their runs, histories and signals with them (one statement per batch).
      CREATE FUNCTION workflow_jobs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        EXECUTE format('DELETE FROM %I.workflow_runs WHERE job_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
        EXECUTE format('DELETE FROM %I.workflow_steps WHERE job_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
        EXECUTE format('DELETE FROM %I.workflow_signals WHERE job_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_deleted_workflows AFTER DELETE ON jobs
        REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION workflow_jobs_deleted();
    `,
  },
  {
    version: 23,
    name: 'one signal per history position',
    sql: `
      -- Two executors of one run (a stale one and its successor) cannot both take a signal for the same position.
      CREATE UNIQUE INDEX workflow_signals_consumed ON workflow_signals (job_id, consumed_by) WHERE consumed_by IS NOT NULL;
    `,
  },
  {
    version: 24,
    name: 'a wake-up a finished child could not deliver is noted for the workers',
    sql: `
      -- A child that finishes while its parent is going to sleep can be missed by both sides: the child's
      -- trigger skips the parent's row (locked by the sleep), and the sleep's own check cannot see the
      -- child's uncommitted transition. Waiting for the other side would risk lock-order deadlocks between
      -- completion batches, so the child leaves a note (committed with it) and the workers' periodic pass
      -- (WorkflowStore.wakeMissed) wakes the parent. No key, so two notes never wait for each other.
      CREATE TABLE workflow_missed_wakes (parent_id bigint NOT NULL, at bigint NOT NULL);
      CREATE OR REPLACE FUNCTION workflow_child_finished() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE woke integer;
      BEGIN
        EXECUTE format(
          'UPDATE %1$I.jobs SET state = ''available'', run_at = LEAST(run_at, COALESCE($2, run_at))
           WHERE id = (SELECT id FROM %1$I.jobs WHERE id = $1 AND state = ''scheduled'' FOR UPDATE SKIP LOCKED)
             AND EXISTS (SELECT 1 FROM %1$I.workflow_runs r WHERE r.job_id = $1 AND r.waiting = ''children'')',
          TG_TABLE_SCHEMA) USING NEW.parent_id, NEW.finished_at;
        GET DIAGNOSTICS woke = ROW_COUNT;
        IF woke > 0 THEN
          PERFORM pg_notify('rebound_' || TG_TABLE_SCHEMA, '*');
        ELSE
          EXECUTE format(
            'INSERT INTO %1$I.workflow_missed_wakes (parent_id, at)
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM %1$I.workflow_runs r WHERE r.job_id = $1 AND r.waiting = ''children'')',
            TG_TABLE_SCHEMA) USING NEW.parent_id, NEW.finished_at;
        END IF;
        RETURN NULL;
      END $$;
    `,
  },
];
