// The measuring procedures every workload is built from: pre-fill a backlog,
// drive worker child processes, and time drains, claims and pickups.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Client, System } from './systems/types.ts';
import { BENCH_DIR, REPO_DIR, chunks, now, payloads, peakRssMiB, settlePostgres, sleep } from './lib.ts';

/** A step that sees no progress for this long has failed. */
const STALL_MS = 60_000;

export type Mode = 'smoke' | 'default' | 'full';

export interface Context {
  mode: Mode;
  concurrency: number;
  /** Selected systems that are available on this machine. */
  systems: System[];
  log: (msg: string) => void;
  /** Each drain is run this many times; the median run is reported. */
  repeats: number;
  /** Drains already measured in this run, shared by throughput, memory, raw and scale-out. */
  drains: Map<string, Promise<DrainResult>>;
}

// ---------- worker children ----------

type Msg = { type: string; [k: string]: any };

/** Every worker child still running, so the runner can kill them all on exit. */
export const liveWorkers = new Set<WorkerProcess>();

export class WorkerProcess {
  readonly child: ChildProcess;
  count = 0;
  private listeners = new Set<(m: Msg) => void>();
  private exited: Promise<number | null>;

  constructor(sys: System, opts: { concurrency: number; marks?: number[] }) {
    this.child = fork(path.join(BENCH_DIR, 'worker.ts'), [JSON.stringify({ system: sys.name, ...opts })], {
      cwd: REPO_DIR,
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: Msg) => {
      if (m.type === 'progress') this.count = m.count;
      for (const l of this.listeners) l(m);
    });
    liveWorkers.add(this);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    this.exited.then(() => liveWorkers.delete(this));
    this.exited.then((code) => {
      for (const l of this.listeners) l({ type: 'exit', code });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The next message of `type` (matching `where`), failing if the child exits or goes quiet. */
  next(type: string, where: (m: Msg) => boolean = () => true, timeoutMs = STALL_MS): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error, m?: Msg) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        err ? reject(err) : resolve(m!);
      };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => done(new Error(`worker ${this.pid}: no "${type}" within ${timeoutMs} ms`)), timeoutMs)
        : undefined;
      const listener = (m: Msg) => {
        if (m.type === type && where(m)) done(undefined, m);
        else if (m.type === 'exit') done(new Error(`worker ${this.pid} exited (code ${m.code}) while waiting for "${type}"`));
      };
      this.listeners.add(listener);
    });
  }

  send(type: string): void {
    this.child.send({ type });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const stopped = this.next('stopped');
    this.send('stop');
    await stopped;
    const code = await Promise.race([this.exited, sleep(10_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') this.child.kill('SIGKILL');
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Start `n` worker children and wait until each has connected. */
export async function startWorkers(sys: System, n: number, opts: { concurrency: number; marks?: number[] }) {
  const workers = Array.from({ length: n }, () => new WorkerProcess(sys, opts));
  try {
    await Promise.all(workers.map((w) => w.next('ready')));
  } catch (e) {
    workers.forEach((w) => w.kill());
    throw e;
  }
  return workers;
}

/** Wait until `cond` holds, failing if `progress` stays the same for STALL_MS. */
async function until(
  cond: () => boolean | Promise<boolean>,
  progress: () => number,
  pollMs: number,
  what: string,
  early?: Promise<unknown>,
) {
  let last = progress();
  let lastChange = now();
  let woken = false;
  early?.then(() => (woken = true), () => {});
  while (!woken && !(await cond())) {
    const p = progress();
    if (p !== last) [last, lastChange] = [p, now()];
    else if (now() - lastChange > STALL_MS) throw new Error(`stalled: ${what} (progress ${p})`);
    await (early ? Promise.race([sleep(pollMs), early]) : sleep(pollMs));
  }
}

// ---------- procedures ----------

/** Writes every dirty page of the machine's file systems to disk (`sync`), where the command exists. */
function syncDisks(): void {
  try {
    execFileSync('sync', { stdio: 'ignore', timeout: 60_000 });
  } catch {
    // No `sync` here: the measurement goes on without it.
  }
}

/** Pre-enqueue `n` jobs with the system's bulk call, then let the store settle. */
export async function fill(ctx: Context, sys: System, client: Client, n: number): Promise<number> {
  const t0 = now();
  for (let from = 0; from < n; from += sys.fillChunk) {
    await client.enqueueMany(payloads(Math.min(sys.fillChunk, n - from), from));
  }
  const seconds = (now() - t0) / 1000;
  await settle(ctx, sys);
  return seconds;
}

/**
 * Before a measurement (not in smoke runs): PostgreSQL vacuumed, analyzed, checkpointed and quiet, and the
 * files the systems before wrote flushed to disk, so their write-back does not slow this system's commits.
 */
export async function settle(ctx: Context, sys: System): Promise<void> {
  if (ctx.mode === 'smoke') return;
  if (sys.store === 'postgres') await settlePostgres(sys.pgSchema);
  syncDisks();
}

/** After a measurement: drop the system's data, so it cannot slow down the next system. */
async function cleanUp(sys: System): Promise<void> {
  await sys.reset().catch((e) => console.error(`  (cleanup of ${sys.name} failed: ${(e as Error).message})`));
}

export interface DrainResult {
  system: string;
  store: string;
  jobs: number;
  workers: number;
  concurrency: number;
  seconds: number;
  jobsPerSec: number;
  /** Highest VmHWM among the worker processes, MiB. */
  peakRssMiB?: number;
  /** Handler runs counted by the workers (more than `jobs` means some ran twice). */
  handled: number;
  fillSeconds: number;
  /** jobs/s of every repetition, in the order run. */
  repetitions: number[];
}

/**
 * Pre-enqueue `jobs`, start `workers` processes and time from "go" until the
 * store reports no outstanding job (every completion committed).
 */
export function drain(ctx: Context, sys: System, jobs: number, workers = 1): Promise<DrainResult> {
  const key = drainKey(ctx, sys, jobs, workers);
  let result = ctx.drains.get(key);
  if (!result) {
    result = (async () => {
      const runs: DrainResult[] = [];
      for (let i = 0; i < ctx.repeats; i++) runs.push(await measureDrain(ctx, sys, jobs, workers));
      return medianDrain(runs);
    })();
    ctx.drains.set(key, result);
  }
  return result;
}

/**
 * Runs `measure` `ctx.repeats` times for each system, in turn (A B C, A B C, A B C) rather than back to
 * back (A A A, B B B, ...): this machine's speed drifts by tens of percent within minutes, and
 * interleaving lets the drift weigh on every system alike. A system that fails sits out the later rounds;
 * its entry is the error's message.
 */
async function interleaved<T>(ctx: Context, systems: System[], measure: (s: System) => Promise<T>): Promise<Map<System, T[] | string>> {
  const out = new Map<System, T[] | string>(systems.map((s) => [s, []]));
  for (let i = 0; i < ctx.repeats; i++) {
    for (const s of systems) {
      const runs = out.get(s)!;
      if (typeof runs === 'string') continue;
      try {
        runs.push(await measure(s));
      } catch (e) {
        out.set(s, (e as Error).message);
        console.error(`  ! ${s.name} failed: ${(e as Error).stack}`);
      }
    }
  }
  return out;
}

/** `drain` for several systems, repetitions `interleaved`; results are shared with `drain`. */
export async function drainEach(
  ctx: Context,
  systems: System[],
  jobs: number,
  failures: string[],
): Promise<{ system: System; result?: DrainResult; error?: string }[]> {
  const todo = systems.filter((s) => !ctx.drains.has(drainKey(ctx, s, jobs, 1)));
  for (const [s, runs] of await interleaved(ctx, todo, (s) => measureDrain(ctx, s, jobs, 1))) {
    ctx.drains.set(drainKey(ctx, s, jobs, 1), typeof runs === 'string' ? Promise.reject(new Error(runs)) : Promise.resolve(medianDrain(runs)));
  }
  return Promise.all(
    systems.map(async (system) => {
      try {
        return { system, result: await ctx.drains.get(drainKey(ctx, system, jobs, 1))! };
      } catch (e) {
        failures.push(`${system.name}: ${(e as Error).message}`);
        return { system, error: (e as Error).message };
      }
    }),
  );
}

/** The middle value (the upper one of the two middles for an even count). */
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const drainKey = (ctx: Context, sys: System, jobs: number, workers: number) => `${sys.name}|${jobs}|${workers}|${ctx.concurrency}`;

/** The median repetition, with the highest peak RSS of all and every repetition's rate. */
function medianDrain(runs: DrainResult[]): DrainResult {
  const mid = median(runs.map((r) => r.jobsPerSec));
  return { ...runs.find((r) => r.jobsPerSec === mid)!, peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB ?? NaN)), repetitions: runs.map((r) => r.jobsPerSec) };
}

async function measureDrain(ctx: Context, sys: System, jobs: number, nWorkers: number): Promise<DrainResult> {
  await sys.reset();
  const producer = await sys.connect('producer');
  let workers: WorkerProcess[] = [];
  try {
    const fillSeconds = await fill(ctx, sys, producer, jobs);
    // A lone worker reports the moment it has started the last job; several report every 10 ms.
    workers = await startWorkers(sys, nWorkers, { concurrency: ctx.concurrency, marks: nWorkers === 1 ? [jobs] : [] });
    const handled = () => workers.reduce((s, w) => s + w.count, 0);
    const all = nWorkers === 1 ? workers[0].next('mark', () => true, Infinity) : undefined;
    const t0 = now();
    workers.forEach((w) => w.send('go'));
    await until(() => handled() >= jobs, handled, 2, `${sys.name} handlers`, all);
    await until(async () => (await producer.outstanding(jobs)) <= 0, handled, 2, `${sys.name} completions`);
    const seconds = (now() - t0) / 1000;
    const rss = workers.map((w) => peakRssMiB(w.pid) ?? NaN);
    await Promise.all(workers.map((w) => w.stop()));
    const r: DrainResult = {
      system: sys.name,
      store: sys.store,
      jobs,
      workers: nWorkers,
      concurrency: ctx.concurrency,
      seconds,
      jobsPerSec: jobs / seconds,
      peakRssMiB: Math.max(...rss),
      handled: workers.reduce((s, w) => s + w.count, 0),
      fillSeconds,
      repetitions: [],
    };
    ctx.log(`${sys.name}: ${jobs} jobs, ${nWorkers} worker(s): ${Math.round(r.jobsPerSec)} jobs/s, peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    return r;
  } finally {
    workers.forEach((w) => w.kill());
    await producer.close();
    await cleanUp(sys);
  }
}

export interface ClaimRateResult {
  system: string;
  store: string;
  waiting: number;
  /** Jobs started before the measured window opens (the first claims, JIT warm-up). */
  warm: number;
  claims: number;
  /** Median of the repetitions. */
  claimsPerSec: number;
  repetitions: number[];
  fillSeconds: number;
}

/**
 * With `waiting` jobs queued, one worker process starts jobs; the claim rate
 * is measured between its `warm`-th and its `warm + claims`-th job start.
 * Repetitions reuse a large backlog (it barely shrinks) and refill a small one.
 */
export async function claimRate(
  ctx: Context,
  sys: System,
  waiting: number,
  warm: number,
  claims: number,
): Promise<ClaimRateResult> {
  const reps: number[] = [];
  let fillSeconds = NaN;
  try {
    let left = 0;
    for (let rep = 0; rep < ctx.repeats; rep++) {
      if (left < 0.9 * waiting) {
        await sys.reset();
        const producer = await sys.connect('producer');
        try {
          fillSeconds = await fill(ctx, sys, producer, waiting);
        } finally {
          await producer.close();
        }
        left = waiting;
      }
      const [worker] = await startWorkers(sys, 1, { concurrency: ctx.concurrency, marks: [warm, warm + claims] });
      try {
        const opened = worker.next('mark', (m) => m.n === warm);
        const closed = worker.next('mark', (m) => m.n === warm + claims);
        closed.catch(() => {}); // awaited below; do not let an early failure go unhandled
        worker.send('go');
        const [a, b] = [await opened, await closed];
        reps.push((claims * 1000) / (b.atMs - a.atMs));
        await worker.stop();
        // Claimed but unstarted jobs may stay locked: count a generous margin as used.
        left -= worker.count + 1000;
      } finally {
        worker.kill();
      }
    }
  } finally {
    await cleanUp(sys);
  }
  const claimsPerSec = [...reps].sort((x, y) => x - y)[Math.floor(reps.length / 2)];
  ctx.log(`${sys.name}: ${waiting} waiting: ${Math.round(claimsPerSec)} claims/s (fill ${fillSeconds.toFixed(1)} s)`);
  return { system: sys.name, store: sys.store, waiting, warm, claims, claimsPerSec, repetitions: reps, fillSeconds };
}

export interface LatencyResult {
  system: string;
  store: string;
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * One idle worker; enqueue one job at a time and time enqueue-call-to-handler-start.
 * Takes `max` samples, or as many as fit in `budgetMs` (but at least `min`):
 * a system that picks up by polling takes 100 ms or more per sample.
 */
export async function pickupLatency(
  ctx: Context,
  sys: System,
  plan: { max: number; min: number; budgetMs: number },
): Promise<number[]> {
  await sys.reset();
  const producer = await sys.connect('producer');
  let worker: WorkerProcess | undefined;
  try {
    await settle(ctx, sys);
    [worker] = await startWorkers(sys, 1, { concurrency: ctx.concurrency });
    const working = worker.next('working');
    worker.send('go');
    await working;
    await sleep(500); // let the worker settle into its idle state
    const pickup = async (i: number) => {
      const picked = worker!.next('pickup', (m) => m.i === i, 30_000);
      picked.catch(() => {}); // awaited below, unless the enqueue throws first
      await producer.enqueue({ i, t: process.hrtime.bigint().toString() });
      const { ms } = await picked;
      await sleep(2); // idle again before the next job
      return ms as number;
    };
    for (let i = -Math.min(20, plan.min); i < 0; i++) await pickup(i); // warm-up
    const out: number[] = [];
    const t0 = now();
    while (out.length < plan.max && (out.length < plan.min || now() - t0 < plan.budgetMs)) out.push(await pickup(out.length));
    await worker.stop();
    return out;
  } finally {
    worker?.kill();
    await producer.close();
    await cleanUp(sys);
  }
}

export interface EnqueueResult {
  system: string;
  store: string;
  sequentialPerSec: number;
  concurrentPerSec: number;
  bulkPerSec: number;
  counts: { sequential: number; concurrent: number; bulk: number; bulkBatch: number; inFlight: number };
  /** Every repetition's rates, in the order run (each figure above is the median of its own). */
  repetitions?: { sequentialPerSec: number; concurrentPerSec: number; bulkPerSec: number }[];
}

/** `enqueueRates` in a producer process of its own (bench/producer.ts). */
function enqueueRatesApart(ctx: Context, sys: System, counts: EnqueueResult['counts']): Promise<EnqueueResult> {
  const child = fork(path.join(BENCH_DIR, 'producer.ts'), [JSON.stringify({ system: sys.name, mode: ctx.mode, counts })], {
    cwd: REPO_DIR,
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * STALL_MS);
  return new Promise<EnqueueResult>((resolve, reject) => {
    child.on('message', (m: Msg) => (m.type === 'result' ? resolve(m.result) : reject(new Error(m.message))));
    child.on('exit', (code) => reject(new Error(`the producer of ${sys.name} exited (code ${code}) without a result`)));
  }).finally(() => clearTimeout(timer));
}

/**
 * `enqueueRates` for several systems, each repetition in a producer process of its own (the parent has
 * loaded and driven every peer by then), repetitions `interleaved`; each rate is the median of its
 * repetitions.
 */
export async function enqueueEach(
  ctx: Context,
  systems: System[],
  counts: EnqueueResult['counts'],
  failures: string[],
): Promise<{ system: System; result?: EnqueueResult; error?: string }[]> {
  const runs = await interleaved(ctx, systems, (s) => enqueueRatesApart(ctx, s, counts));
  return systems.map((system) => {
    const r = runs.get(system)!;
    if (typeof r === 'string') {
      failures.push(`${system.name}: ${r}`);
      return { system, error: r };
    }
    const rates = r.map(({ sequentialPerSec, concurrentPerSec, bulkPerSec }) => ({ sequentialPerSec, concurrentPerSec, bulkPerSec }));
    return {
      system,
      result: {
        ...r[0],
        sequentialPerSec: median(rates.map((x) => x.sequentialPerSec)),
        concurrentPerSec: median(rates.map((x) => x.concurrentPerSec)),
        bulkPerSec: median(rates.map((x) => x.bulkPerSec)),
        repetitions: rates,
      },
    };
  });
}

/** Sequential awaited enqueues, `inFlight` concurrent single enqueues, and bulk batches. */
export async function enqueueRates(
  ctx: Context,
  sys: System,
  counts: EnqueueResult['counts'],
): Promise<EnqueueResult> {
  await sys.reset();
  const c = await sys.connect('producer');
  try {
    await settle(ctx, sys);
    for (let i = 0; i < 100; i++) await c.enqueue({ i: -i }); // warm up connections and JIT
    await c.enqueueMany(payloads(counts.bulkBatch));
    let t0 = now();
    for (let i = 0; i < counts.sequential; i++) await c.enqueue({ i });
    const sequentialPerSec = counts.sequential / ((now() - t0) / 1000);

    let next = 0;
    t0 = now();
    await Promise.all(
      Array.from({ length: counts.inFlight }, async () => {
        while (next < counts.concurrent) await c.enqueue({ i: next++ });
      }),
    );
    const concurrentPerSec = counts.concurrent / ((now() - t0) / 1000);

    const batches = chunks(payloads(counts.bulk), counts.bulkBatch);
    t0 = now();
    for (const b of batches) await c.enqueueMany(b);
    const bulkPerSec = counts.bulk / ((now() - t0) / 1000);

    const r = { system: sys.name, store: sys.store, sequentialPerSec, concurrentPerSec, bulkPerSec, counts };
    ctx.log(`${sys.name}: sequential ${Math.round(sequentialPerSec)}/s, ${counts.inFlight} in flight ${Math.round(concurrentPerSec)}/s, bulk ${Math.round(bulkPerSec)}/s`);
    return r;
  } finally {
    await c.close();
    await cleanUp(sys);
  }
}
