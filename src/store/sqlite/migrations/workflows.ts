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
        job_id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        version INTEGER NOT NULL,
        status TEXT NOT NULL,
        state TEXT,
        waiting TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE workflow_steps (
        job_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        wake_at INTEGER,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        compensation TEXT NOT NULL DEFAULT 'none',
        compensation_attempts INTEGER NOT NULL DEFAULT 0,
        compensation_error TEXT,
        PRIMARY KEY (job_id, seq)
      );
      CREATE TABLE workflow_signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        consumed_by INTEGER
      );
      CREATE INDEX workflow_signals_job ON workflow_signals (job_id, name, id);

      -- A finished child wakes its parent at once when the parent sleeps in ctx.join(),
      -- in the same transaction as the child's last transition, so no wake-up is lost.
      CREATE TRIGGER workflow_child_finished AFTER UPDATE OF state ON jobs
      WHEN NEW.parent_id IS NOT NULL AND NEW.state IN ${FINAL} AND OLD.state NOT IN ${FINAL}
      BEGIN
        UPDATE jobs SET state = 'available', run_at = min(run_at, coalesce(NEW.finished_at, run_at))
        WHERE id = NEW.parent_id AND state = 'scheduled'
          AND EXISTS (SELECT 1 FROM workflow_runs r WHERE r.job_id = NEW.parent_id AND r.waiting = 'children');
      END;

      -- A workflow going to sleep on children or a signal that arrived while it was still running
      -- (after it looked, before it slept) is made due again at once: no wake-up is missed.
      CREATE TRIGGER workflow_sleep_missed_wake AFTER UPDATE OF state ON jobs
      WHEN OLD.state = 'running' AND NEW.state = 'scheduled'
      BEGIN
        UPDATE jobs SET state = 'available', run_at = min(run_at, coalesce(NEW.started_at, run_at))
        WHERE id = NEW.id AND EXISTS (
          SELECT 1 FROM workflow_runs r WHERE r.job_id = NEW.id AND (
            (r.waiting = 'children' AND EXISTS (
               SELECT 1 FROM jobs c WHERE c.parent_id = NEW.id AND c.state IN ${FINAL} AND c.finished_at >= NEW.started_at))
            OR (r.waiting LIKE 'signal:%' AND EXISTS (
               SELECT 1 FROM workflow_signals s WHERE s.job_id = NEW.id AND s.consumed_by IS NULL AND 'signal:' || s.name = r.waiting))));
      END;
    `,
  },
  {
    version: 21,
    name: 'per-key ordering of jobs',
    sql: `
      ALTER TABLE jobs ADD COLUMN ordering_key TEXT;
      ALTER TABLE jobs ADD COLUMN ordering_seq INTEGER;
      ALTER TABLE jobs ADD COLUMN ordering_on_dead TEXT;
      CREATE INDEX jobs_ordering ON jobs (ordering_key, ordering_seq) WHERE ordering_key IS NOT NULL;
      CREATE TABLE ordering_keys (key TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    `,
  },
  {
    version: 22,
    name: 'workflow records go with their job',
    sql: `
      -- A job deleted by a purge or by retention takes its run, history and signals with it.
      CREATE TRIGGER workflow_job_deleted AFTER DELETE ON jobs
      BEGIN
        DELETE FROM workflow_runs WHERE job_id = OLD.id;
        DELETE FROM workflow_steps WHERE job_id = OLD.id;
        DELETE FROM workflow_signals WHERE job_id = OLD.id;
      END;
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
];
