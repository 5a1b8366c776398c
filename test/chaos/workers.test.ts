/**
 * Worker processes killed (SIGKILL), frozen past their lease (SIGSTOP, then
 * SIGCONT), a downstream outage, and handlers that throw, hang past their
 * timeout or block their event loop: no job is lost, no payment is made twice,
 * and only the jobs that belong there end in the dead letter queue.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runExperiment } from '../../chaos/harness.ts';
import { toMarkdown } from '../../chaos/report.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';
import { scenario } from './scenario.ts';

describe.each(storeKinds)('chaos on %s: killed and frozen workers, a downstream outage, misbehaving handlers', (kind) => {
  let url: string;
  afterEach(async () => dropStore(url));

  it('loses no job, applies no payment twice, and sends only the right jobs to the dead letter queue', async () => {
    url = freshStoreUrl(kind);
    const verdict = await runExperiment(
      scenario(kind, {
        storeUrl: url,
        mix: { jobs: 300, slow: 4, flaky: 8, hang: 3, block: 2, permanent: 3, exhausted: 3 },
        faults: { killWorker: 3, stopWorker: 1, downstreamOutage: 1 },
      }),
    );
    const report = toMarkdown(verdict);
    expect(verdict.enqueued, report).toBe(300);
    expect(verdict.lost, report).toBe(0);
    expect(verdict.appliedTwice, report).toBe(0);
    expect(verdict.effectsMissing, report).toBe(0);
    expect(verdict.unexpectedDead, report).toBe(0);
    expect(verdict.wrongOutcome, report).toBe(0);
    expect(verdict.unexpectedExits, report).toEqual([]);
    // The faults really struck: workers were killed and their leases rescued, and every job that pays paid once.
    expect(verdict.faults.filter((f) => f.kind === 'kill-worker'), report).toHaveLength(3);
    expect(verdict.leaseExpiredEvents, report).toBeGreaterThan(0);
    expect(verdict.ledger.applied, report).toBe(verdict.states.completed);
    expect(verdict.byType['chaos.permanent'], report).toEqual({ 'dead (permanent)': 3 });
    expect(verdict.byType['chaos.exhausted'], report).toEqual({ 'dead (exhausted)': 3 });
  });
});
