/**
 * The database restarted mid-run and every connection killed with
 * pg_terminate_backend, on a PostgreSQL server of the test's own (the shared
 * one is never touched): workers ride it out, enqueues retried with their
 * idempotency keys are not doubled, no job is lost and no payment made twice.
 */
import { describe, expect, it } from 'vitest';
import { runExperiment } from '../../chaos/harness.ts';
import { toMarkdown } from '../../chaos/report.ts';
import { scenario } from './scenario.ts';

describe('chaos on PostgreSQL: a database restart and killed connections', () => {
  it('loses no job and applies no payment twice; no worker crashes on a dropped connection', async () => {
    const verdict = await runExperiment(
      scenario('postgres', {
        mix: { jobs: 400, slow: 4, flaky: 6, permanent: 2 },
        faults: { dbRestart: 1, dbTerminate: 2, killWorker: 1 },
        windowMs: 10_000,
      }),
    );
    const report = toMarkdown(verdict);
    expect(verdict.enqueued, report).toBe(400);
    expect(verdict.lost, report).toBe(0);
    expect(verdict.appliedTwice, report).toBe(0);
    expect(verdict.effectsMissing, report).toBe(0);
    expect(verdict.unexpectedDead, report).toBe(0);
    expect(verdict.wrongOutcome, report).toBe(0);
    // A worker may fail to start while the server is down (and is restarted); none may die of a dropped connection.
    expect(verdict.unexpectedExits, report).toEqual([]);
    expect(verdict.faults.map((f) => f.kind).sort(), report).toEqual(['db-restart', 'db-terminate', 'db-terminate', 'kill-worker']);
    // Work resumed after the restart.
    const restart = verdict.faults.find((f) => f.kind === 'db-restart')!;
    expect(restart.afterLiftMs, report).not.toBeNull();
  });
});
