/**
 * The faults the harness injects, at seeded random times: workers and their
 * supervisor killed (SIGKILL), workers frozen past their lease (SIGSTOP, then SIGCONT), the payment
 * service taken down and brought back, the database restarted, and every
 * Rebound connection killed with pg_terminate_backend. Handler faults (throw,
 * hang past the timeout, block the event loop, kill the process) live in the
 * workload itself (jobs.ts).
 */
import type { PaymentService } from './ledger.ts';
import type { ChaosPostgres } from './postgres.ts';
import type { WorkerPool } from './workers.ts';

export type FaultKind = 'kill-worker' | 'kill-supervisor' | 'stop-worker' | 'downstream-outage' | 'db-restart' | 'db-terminate';

export interface FaultPlan {
  killWorker: number;
  /** Supervised runs only. */
  killSupervisor: number;
  stopWorker: number;
  downstreamOutage: number;
  /** PostgreSQL only. */
  dbRestart: number;
  /** PostgreSQL only. */
  dbTerminate: number;
  /** SIGSTOP length: past the longest lease (2 s) and a rescue interval (2 s). */
  stopMs: number;
  outageMs: number;
  dbDownMs: number;
}

export interface Fault {
  kind: FaultKind;
  /** When the fault struck (epoch ms). */
  at: number;
  /** When the fault was lifted (SIGCONT, service back, server up), or `at` for instant faults. */
  endAt: number;
  /** The worker pid, for worker faults. */
  pid?: number;
  note?: string;
}

export interface FaultTargets {
  pool: WorkerPool;
  payments: PaymentService;
  postgres: ChaosPostgres | null;
  random: () => number;
  /** The running jobs of each worker process that holds any now, by pid (from the jobs' lease owners). */
  busy?: () => Promise<Map<number, string[]>>;
  /** Jobs a worker fault was aimed at already: aiming at one again would make it poison by design. */
  struck?: Set<string>;
}

/** The order and offsets (ms from the window's start) of the faults, spread over `windowMs`. */
export function scheduleFaults(plan: FaultPlan, windowMs: number, random: () => number, hasPostgres: boolean, supervised: boolean) {
  const kinds: FaultKind[] = [
    ...Array<FaultKind>(plan.killWorker).fill('kill-worker'),
    ...(supervised ? Array<FaultKind>(plan.killSupervisor).fill('kill-supervisor') : []),
    ...Array<FaultKind>(plan.stopWorker).fill('stop-worker'),
    ...Array<FaultKind>(plan.downstreamOutage).fill('downstream-outage'),
    ...(hasPostgres ? Array<FaultKind>(plan.dbTerminate).fill('db-terminate') : []),
  ];
  const timeline = kinds.map((kind) => ({ kind, offset: Math.floor(random() * windowMs) }));
  // The database restart strikes mid-run, with work in flight everywhere.
  if (hasPostgres) for (let i = 0; i < plan.dbRestart; i++) timeline.push({ kind: 'db-restart', offset: Math.floor(windowMs * ((i + 1) / (plan.dbRestart + 1))) });
  return timeline.sort((a, b) => a.offset - b.offset);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A live worker to strike; waits for one while the pool (or a new supervisor) is still starting them.
 * For up to `busyWaitMs` it waits for one that runs a job no earlier fault was aimed at: a fault that
 * finds every worker idle (short jobs on a fast machine) tests nothing, and one aimed at the same long
 * job again and again makes that job poison, as designed, rather than testing the rescue.
 */
async function target(t: FaultTargets, waitMs = 20_000, busyWaitMs = 3000): Promise<number | null> {
  const busyUntil = Date.now() + busyWaitMs;
  while (t.busy && t.struck && Date.now() < busyUntil) {
    const busy = await t.busy().catch(() => new Map<number, string[]>());
    const fresh = (p: number) => (busy.get(p) ?? []).some((id) => !t.struck!.has(id));
    const candidates = t.pool.pids().filter((p) => fresh(p) && t.pool.upFor(p) >= 1000);
    if (candidates.length) {
      const pid = candidates[Math.floor(t.random() * candidates.length)];
      for (const id of busy.get(pid)!) t.struck.add(id);
      return pid;
    }
    await sleep(25);
  }
  const end = Date.now() + waitMs;
  for (;;) {
    // Prefer a worker up for a few seconds: it has had time to claim work.
    const settled = t.pool.pick(t.random, 3000);
    if (settled != null && (t.pool.upFor(settled) >= 3000 || Date.now() > end)) return settled;
    if (Date.now() > end) return settled;
    await sleep(200);
  }
}

/** Injects one fault and, for lasting ones, lifts it. */
export async function inject(kind: FaultKind, plan: FaultPlan, t: FaultTargets): Promise<Fault | null> {
  let at = Date.now();
  switch (kind) {
    case 'kill-worker': {
      const pid = await target(t);
      if (pid == null) return null;
      at = Date.now();
      t.pool.kill(pid);
      return { kind, at, endAt: at, pid };
    }
    case 'kill-supervisor': {
      const pid = t.pool.killSupervisor();
      if (pid == null) return null;
      // The pool starts a new supervisor after its restart delay. Wait for it, so that a kill landing
      // after the last job cannot end the run before the restart it is meant to test.
      const until = Date.now() + 10_000;
      while ((t.pool.supervisorPid() ?? pid) === pid && Date.now() < until) await sleep(50);
      return { kind, at, endAt: at, note: `supervisor pid ${pid}` };
    }
    case 'stop-worker': {
      const pid = await target(t);
      if (pid == null) return null;
      at = Date.now();
      t.pool.pause(pid);
      await sleep(plan.stopMs);
      t.pool.resume(pid);
      return { kind, at, endAt: Date.now(), pid };
    }
    case 'downstream-outage': {
      await t.payments.down();
      await sleep(plan.outageMs);
      await t.payments.up();
      return { kind, at, endAt: Date.now() };
    }
    case 'db-restart': {
      await t.postgres!.restart(plan.dbDownMs);
      return { kind, at, endAt: Date.now() };
    }
    case 'db-terminate': {
      const n = await t.postgres!.terminateBackends();
      return { kind, at, endAt: Date.now(), note: `${n} connections terminated` };
    }
  }
}
