/** Versions 40-49: visibility (trace context on jobs, the audit trail, stats rollups). */
import type { Migration } from './index.ts';

export const visibilityMigrations: Migration[] = [
  {
    version: 40,
    name: 'trace context, audit trail, stats rollups',
    sql: `
      ALTER TABLE jobs ADD COLUMN trace_context TEXT;

      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT,
        seq INTEGER UNIQUE,
        prev_hash TEXT,
        hash TEXT
      );
      CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;
      CREATE INDEX audit_log_action ON audit_log (action);

      CREATE TABLE audit_segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        head_hash TEXT NOT NULL,
        prev_head_hash TEXT NOT NULL,
        sealed_at INTEGER NOT NULL
      );

      CREATE TABLE stats_outcomes (
        minute INTEGER NOT NULL,
        type TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (minute, type, outcome)
      );
      CREATE TABLE stats_latency (
        minute INTEGER NOT NULL,
        type TEXT NOT NULL,
        kind TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (minute, type, kind, bucket)
      );
      CREATE TABLE stats_errors (
        minute INTEGER NOT NULL,
        type TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        message TEXT NOT NULL,
        count INTEGER NOT NULL,
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
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        totals TEXT NOT NULL,
        pruned_at INTEGER NOT NULL
      );
      CREATE INDEX audit_log_operator ON audit_log (seq) WHERE action NOT LIKE 'job.submit%';
    `,
  },
];
