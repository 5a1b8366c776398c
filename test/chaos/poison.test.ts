/**
 * Jobs that kill their own worker process: each ends in the dead letter queue
 * as poison after maxCrashes, the pool of workers keeps going, and the other
 * jobs complete, each paid once.
 */
import { describe, expect, it } from 'vitest';
import { runExperiment } from '../../chaos/harness.ts';
import { toMarkdown } from '../../chaos/report.ts';
import { scenario } from './scenario.ts';

describe('chaos: poison jobs', () => {
  // Concurrency 1: a worker that dies runs only the job that killed it, so the crash is blamed on the right job.
  // (With more jobs in flight, the jobs beside a poison job share its crashes: see docs/reliability.md.)
  it('poison jobs end in the dead letter queue as poison; every other job completes once', async () => {
    const verdict = await runExperiment(
      scenario('sqlite', { mix: { jobs: 60, poison: 2, flaky: 4 }, faults: {}, workers: 2, concurrency: 1, windowMs: 6000 }),
    );
    const report = toMarkdown(verdict);
    expect(verdict.lost, report).toBe(0);
    expect(verdict.poisonMissing, report).toBe(0);
    expect(verdict.byType['chaos.poison'], report).toEqual({ 'dead (poison)': 2 });
    expect(verdict.unexpectedDead, report).toBe(0);
    expect(verdict.appliedTwice, report).toBe(0);
    expect(verdict.states.completed, report).toBe(58);
    // Each poison job was blamed for maxCrashes + 1 = 3 crashes of its own; a crash that also took another
    // job's lease is not blamed (the suspects rerun alone), so there may be more kills, never fewer.
    expect(verdict.workerExits['self-kill (poison)'], report).toBeGreaterThanOrEqual(6);
  });
});
