/**
 * One chaos experiment: real worker processes on a real store, a producer
 * enqueueing the workload, faults injected at seeded random times, then a
 * wait for the system to go quiet and a verdict read straight from the tables.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRebound, type Logger, type Rebound } from '../src/index.ts';
import { inject, scheduleFaults, type Fault, type FaultPlan } from './faults.ts';
import chaosJobs from './jobs.ts';
import { PaymentService } from './ledger.ts';
import { ChaosPostgres } from './postgres.ts';
import { judge, type Verdict } from './report.ts';
import { snapshot } from './snapshot.ts';
import { WorkerPool } from './workers.ts';
import { planWorkload, rng, type PlannedJob, type WorkloadMix } from './workload.ts';

export interface ExperimentConfig {
  store: 'sqlite' | 'postgres';
  /**
   * Use this store instead of a fresh one (a test schema on a shared server).
   * PostgreSQL faults need the experiment's own server, so they are skipped then.
   */
  storeUrl?: string;
  seed: number;
  mix: WorkloadMix;
  workers: number;
  concurrency: number;
  /** Run the workers under the supervisor (`rebound worker --processes N`); the supervisor can then be killed too. */
  supervised?: boolean;
  /** The producer spreads the enqueues over this long. */
  enqueueOverMs: number;
  /** Faults strike between 1 s and this long after the start. */
  faultWindowMs: number;
  faults: FaultPlan;
  /**
   * A stall: no job reached a final state for this long while some were still open. The wait for quiescence
   * lasts as long as jobs keep finishing (a slow machine drains slowly), up to ten of these windows.
   */
  quiesceTimeoutMs: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

/** Cleanups of the experiments under way, for a signal handler (run.ts). */
const cleanups = new Set<() => Promise<void>>();

/** Stops every experiment's workers and database now (Ctrl-C). */
export async function abortExperiments(): Promise<void> {
  await Promise.all([...cleanups].map((c) => c().catch(() => {})));
}

export async function runExperiment(cfg: ExperimentConfig): Promise<Verdict> {
  const log = cfg.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'rebound-chaos-'));
  const payments = new PaymentService(dir);
  const postgres = cfg.store === 'postgres' && !cfg.storeUrl ? new ChaosPostgres() : null;
  let pool: WorkerPool | null = null;
  let client: Rebound | null = null;
  const cleanup = async () => {
    await pool?.stop(2000);
    await client?.close().catch(() => {});
    await payments.close();
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.add(cleanup);
  try {
    await payments.up();
    if (postgres) await postgres.start();
    const storeUrl = cfg.storeUrl ?? (postgres ? postgres.storeUrl : `sqlite:${join(dir, 'jobs.db')}`);
    client = await createRebound({ store: storeUrl, jobs: chaosJobs, logger: silent });
    const runId = `chaos-${cfg.seed}`;
    const planned = planWorkload(cfg.mix, cfg.seed, cfg.enqueueOverMs, runId);
    const random = rng(cfg.seed ^ 0x5eed);
    const startedAt = Date.now();
    log(`${cfg.store}: ${planned.length} jobs, ${cfg.workers} workers x ${cfg.concurrency}, seed ${cfg.seed}`);

    pool = new WorkerPool({
      storeUrl,
      size: cfg.workers,
      concurrency: cfg.concurrency,
      env: { CHAOS_PAYMENTS_URL: payments.url },
      supervised: cfg.supervised,
      // Shorter than a SIGSTOP, so the supervisor replaces a frozen worker.
      livenessTimeoutMs: cfg.supervised ? Math.min(3000, cfg.faults.stopMs - 1000) : undefined,
    });
    pool.start();

    const producer = produce(client, planned, cfg.enqueueOverMs, log);
    const faults: Fault[] = [];
    const timeline = scheduleFaults(cfg.faults, cfg.faultWindowMs - 1000, random, !!postgres, !!cfg.supervised);
    const struck = new Set<string>();
    const injector = (async () => {
      for (const step of timeline) {
        const wait = startedAt + 1000 + step.offset - Date.now();
        if (wait > 0) await sleep(wait);
        const fault = await inject(step.kind, cfg.faults, { pool: pool!, payments, postgres, random, busy: () => runningByPid(client!), struck });
        if (fault) {
          faults.push(fault);
          log(`  t=${((fault.at - startedAt) / 1000).toFixed(1)}s ${fault.kind}${fault.pid ? ` pid ${fault.pid}` : ''}${fault.note ? ` (${fault.note})` : ''}`);
        }
      }
    })();
    const enqueueRetries = await producer;
    await injector;
    log(`  all faults injected; waiting for the system to go quiet`);
    let stallRestarts = 0;
    // A stall is a finding, not a loss: replace every worker process once and see whether the work then finishes.
    if (!(await quiesce(client, cfg.quiesceTimeoutMs, log))) {
      stallRestarts++;
      log('  stalled: restarting every worker process');
      await pool.stop(5000);
      pool.start();
      await quiesce(client, cfg.quiesceTimeoutMs, log);
    }
    const endedAt = Date.now();
    await pool.stop();
    await client.close();
    client = null;

    const snap = await snapshot(storeUrl);
    return judge({
      store: cfg.store,
      seed: cfg.seed,
      startedAt,
      endedAt,
      workers: cfg.workers,
      concurrency: cfg.concurrency,
      planned,
      enqueueRetries,
      snapshot: snap,
      ledger: payments.figures(),
      paid: payments.paidJobs(),
      faults,
      exits: pool.exits,
      workerStarts: pool.started,
      supervised: !!cfg.supervised,
      lingered: pool.lingered,
      stallRestarts,
    });
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
  }
}

/** Enqueues the workload in batches over `overMs`; a batch that fails (a fault) is retried with the same keys. */
/** Running jobs by the pid of the worker holding them: worker ids are `<host>:<pid>:<suffix>` (src/runtime/worker.ts). */
async function runningByPid(client: Rebound): Promise<Map<number, string[]>> {
  const byPid = new Map<number, string[]>();
  for (const j of await client.listJobs({ state: 'running', limit: 200 })) {
    const pid = Number(j.leaseOwner?.split(':').at(-2));
    if (Number.isInteger(pid)) byPid.set(pid, [...(byPid.get(pid) ?? []), j.id]);
  }
  return byPid;
}

async function produce(client: Rebound, planned: PlannedJob[], overMs: number, log: (l: string) => void): Promise<number> {
  const batches = Math.max(1, Math.ceil(overMs / 100));
  const size = Math.ceil(planned.length / batches);
  const start = Date.now();
  let retries = 0;
  for (let i = 0; i * size < planned.length; i++) {
    const wait = start + i * 100 - Date.now();
    if (wait > 0) await sleep(wait);
    const batch = planned.slice(i * size, (i + 1) * size);
    for (;;) {
      try {
        await client.enqueueMany(batch);
        break;
      } catch (err) {
        retries++;
        if (retries % 20 === 1) log(`  enqueue retry (${(err as Error).message})`);
        await sleep(200);
      }
    }
  }
  return retries;
}

/**
 * Waits until no job is scheduled, available or running; store errors (a fault's aftermath) are retried.
 * false: stalled (no job finished for `stallMs`), or still draining after ten times that. Before, the wait
 * ended `stallMs` after it began, so a slow machine still draining steadily was reported as a stall.
 */
export async function quiesce(client: Rebound, stallMs: number, log: (l: string) => void): Promise<boolean> {
  const began = Date.now();
  let progressAt = began;
  let finished = -1;
  let lastLog = 0;
  while (Date.now() - progressAt < stallMs && Date.now() - began < 10 * stallMs) {
    try {
      const c = await client.countByState();
      const open = (c.scheduled ?? 0) + (c.available ?? 0) + (c.running ?? 0);
      if (open === 0) return true;
      const done = (c.completed ?? 0) + (c.compensated ?? 0) + (c.dead ?? 0) + (c.cancelled ?? 0);
      if (done !== finished) [finished, progressAt] = [done, Date.now()];
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`  open: scheduled ${c.scheduled ?? 0}, available ${c.available ?? 0}, running ${c.running ?? 0}; completed ${c.completed ?? 0}, dead ${c.dead ?? 0}`);
      }
    } catch {
      // the store is coming back
    }
    await sleep(250);
  }
  const why = Date.now() - progressAt >= stallMs ? `no job finished for ${stallMs} ms` : `still draining after ${10 * stallMs} ms`;
  log(`  quiescence timeout: ${why}`);
  return false;
}
