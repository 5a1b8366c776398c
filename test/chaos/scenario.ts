/** Small experiments for the test suite: the same harness as `npm run chaos`, scaled down. */
import type { ExperimentConfig } from '../../chaos/harness.ts';
import type { FaultPlan } from '../../chaos/faults.ts';
import type { WorkloadMix } from '../../chaos/workload.ts';

const noFaults: FaultPlan = {
  killWorker: 0,
  killSupervisor: 0,
  stopWorker: 0,
  downstreamOutage: 0,
  dbRestart: 0,
  dbTerminate: 0,
  stopMs: 4500,
  outageMs: 1500,
  dbDownMs: 1000,
};

const noRareJobs: WorkloadMix = { jobs: 0, slow: 0, flaky: 0, hang: 0, block: 0, permanent: 0, exhausted: 0, poison: 0 };

export function scenario(
  store: ExperimentConfig['store'],
  opts: {
    storeUrl?: string;
    mix: Partial<WorkloadMix>;
    faults: Partial<FaultPlan>;
    workers?: number;
    concurrency?: number;
    windowMs?: number;
    supervised?: boolean;
  },
): ExperimentConfig {
  const windowMs = opts.windowMs ?? 9000;
  return {
    store,
    storeUrl: opts.storeUrl,
    seed: 1 + Math.floor(Math.random() * 100_000),
    workers: opts.workers ?? 2,
    concurrency: opts.concurrency ?? 4,
    supervised: opts.supervised,
    mix: { ...noRareJobs, ...opts.mix },
    // Jobs arrive through the whole fault window, so a fault scheduled late in it still finds work in flight:
    // with enqueueing over 60 % of the window, a late stop (which holds back the faults after it) once left
    // three kills only idle workers to strike, and no lease to rescue.
    enqueueOverMs: windowMs,
    faultWindowMs: windowMs,
    faults: { ...noFaults, ...opts.faults },
    quiesceTimeoutMs: 120_000,
  };
}
