/** Versions 40-49: visibility (trace context on jobs, the audit trail, stats rollups). */
import type { Migration } from './index.ts';

export const visibilityMigrations: Migration[] = [
  {
    version: 40,
    name: 'trace context, audit trail, stats rollups',
    sql: `
      ALTER TABLE jobs ADD COLUMN trace_context text;

      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        target text NOT NULL,
        details text,
        seq bigint UNIQUE,
        prev_hash text,
        hash text
      );
      CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;
      CREATE INDEX audit_log_action ON audit_log (action);

      CREATE TABLE audit_segments (
        id bigserial PRIMARY KEY,
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        count bigint NOT NULL,
        head_hash text NOT NULL,
        prev_head_hash text NOT NULL,
        sealed_at bigint NOT NULL
      );

      CREATE TABLE stats_outcomes (
        minute bigint NOT NULL,
        type text NOT NULL,
        outcome text NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (minute, type, outcome)
      );
      CREATE TABLE stats_latency (
        minute bigint NOT NULL,
        type text NOT NULL,
        kind text NOT NULL,
        bucket bigint NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (minute, type, kind, bucket)
      );
      CREATE TABLE stats_errors (
        minute bigint NOT NULL,
        type text NOT NULL,
        fingerprint text NOT NULL,
        kind text NOT NULL,
        name text NOT NULL,
        message text NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (minute, type, fingerprint)
      );
    `,
  },
  {
    version: 41,
    name: 'audit retention: the anchor of a pruned trail, operator actions by seq',
    // One row: the last pruned entry (the kept chain goes on from its hash) and the totals reconcile needs from
    // every pruned entry. The partial index serves GET /api/audit?kind=operator, which otherwise read past every
    // submission (most of the trail) to find a few operator actions; its predicate is written as the query writes it.
    sql: `
      CREATE TABLE audit_anchor (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL,
        totals text NOT NULL,
        pruned_at bigint NOT NULL
      );
      CREATE INDEX audit_log_operator ON audit_log (seq) WHERE action NOT LIKE 'job.submit%';
    `,
  },
];
