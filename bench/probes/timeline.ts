/**
 * Where a fresh worker process's drain goes: the harness's own worker child (bench/worker.ts) on a
 * prepared, settled backlog, timed from "go" as the throughput workload times it. Not part of `npm run bench`:
 *
 *   node --import tsx bench/probes/timeline.ts [system] [jobs] [rounds] [-- node flags for the worker...]
 *
 * e.g. `bench/probes/timeline.ts rebound-pg 20000 3`, or `... rebound-pg 20000 1 -- --trace-opt > trace.log`
 * (with node flags, "=== go" and "=== last job started" lines frame the drain in the worker's output).
 * Per round, read from /proc between "go" and the last job's start: the worker's CPU on its main thread and
 * on its other threads (V8's optimizing compiler and the collector's helpers), also per 10,000 jobs; each
 * PostgreSQL process's CPU; how busy the machine was; and the wall time of every 1,000 jobs.
 */
import { execFileSync, fork } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { system } from '../systems/index.ts';
import { BENCH_DIR, REPO_DIR, ensureBenchDatabase, now, payloads, settlePostgres, sleep } from '../lib.ts';

const dash = process.argv.indexOf('--');
const args = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const nodeFlags = dash < 0 ? [] : process.argv.slice(dash + 1);
const sys = system(args[0] ?? 'rebound-pg');
const jobs = Number(args[1] ?? 20_000);
const rounds = Number(args[2] ?? 3);
const STEP = 1000;
const CPU_STEP = 10_000;

/** utime + stime of a /proc stat line, in ms (100 Hz ticks). */
function statMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface CpuSnapshot {
  main: number;
  other: number;
  machineBusy: number;
  /** CPU ms by PostgreSQL process: "walwriter [pid]", or a backend's "postgres rebound_bench 127.0.0.1 [pid]". */
  postgres: Map<string, number>;
}

function snapshot(workerPid: number): CpuSnapshot {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${workerPid}/task`)) {
    const ms = statMs(readFileSync(`/proc/${workerPid}/task/${tid}/stat`, 'utf8'));
    if (tid === String(workerPid)) main += ms;
    else other += ms;
  }
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const machineBusy = (ticks.reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]) * 10; // all but idle and iowait
  const postgres = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').replace(/\(\d+\).*$/, '').replace(/^postgres: \S+ /, '');
      postgres.set(`${title.trim()} [${pid}]`, statMs(stat));
    } catch {
      // the process ended meanwhile
    }
  }
  return { main, other, machineBusy, postgres };
}

/** PostgreSQL processes that used CPU between two snapshots (a backend that started meanwhile counts from 0). */
function postgresBetween(a: CpuSnapshot, b: CpuSnapshot): [string, number][] {
  return [...b.postgres].map(([k, ms]): [string, number] => [k, ms - (a.postgres.get(k) ?? 0)]).filter(([, ms]) => ms > 0).sort((x, y) => y[1] - x[1]);
}

async function prepare() {
  await sys.reset();
  const producer = await sys.connect('producer');
  for (let from = 0; from < jobs; from += sys.fillChunk) await producer.enqueueMany(payloads(Math.min(sys.fillChunk, jobs - from), from));
  if (sys.store === 'postgres') await settlePostgres(sys.pgSchema);
  execFileSync('sync'); // as the harness does: the fill's dirty pages are written before the clock starts
  return producer;
}

async function round(n: number) {
  const producer = await prepare();
  const marks = Array.from({ length: jobs / STEP }, (_, i) => (i + 1) * STEP);
  const child = fork(path.join(BENCH_DIR, 'worker.ts'), [JSON.stringify({ system: sys.name, concurrency: 50, marks })], {
    cwd: REPO_DIR,
    execArgv: ['--import', import.meta.resolve('tsx'), ...nodeFlags],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const startedAt = new Map<number, number>();
  const cpu: CpuSnapshot[] = [];
  let t0 = 0;
  let ready!: () => void;
  let last!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const lastStarted = new Promise<void>((r) => (last = r));
  child.on('message', (m: { type: string; n: number }) => {
    if (m.type === 'ready') ready();
    if (m.type !== 'mark') return;
    startedAt.set(m.n, now() - t0);
    if (m.n % CPU_STEP === 0 || m.n === jobs) cpu.push(snapshot(child.pid!));
    if (m.n === jobs) last();
  });
  await isReady;
  cpu.push(snapshot(child.pid!));
  if (nodeFlags.length) console.log('=== go');
  t0 = now();
  child.send({ type: 'go' });
  await lastStarted;
  if (nodeFlags.length) console.log('=== last job started');
  const wall = now() - t0;
  while ((await producer.outstanding(jobs)) > 0) await sleep(2); // as the harness polls
  const committed = now() - t0;
  child.send({ type: 'stop' });
  await new Promise((r) => child.on('exit', r));
  await producer.close();

  const [first, end] = [cpu[0], cpu[cpu.length - 1]];
  const perStep = cpu.slice(1).map((c, i) => `${c.main - cpu[i].main}/${c.other - cpu[i].other}`);
  const busy = Math.round(((end.machineBusy - first.machineBusy) / (wall * availableParallelism())) * 100);
  const segments = marks.map((m, i) => (startedAt.get(m)! - (i ? startedAt.get(marks[i - 1])! : 0)).toFixed(0));
  console.log(
    `${sys.name} round ${n}: last job started at ${wall.toFixed(0)} ms, all committed at ${committed.toFixed(0)} ms (${Math.round(jobs / (committed / 1000))} jobs/s); machine busy ${busy} %\n` +
      `  worker CPU ms: main thread ${end.main - first.main}, other threads ${end.other - first.other}; per ${CPU_STEP.toLocaleString('en')} jobs (main/other): ${perStep.join(' ')}\n` +
      `  PostgreSQL CPU ms: ${postgresBetween(first, end).map(([k, ms]) => `${k} ${ms}`).join('; ')}\n` +
      `  ms per ${STEP.toLocaleString('en')} jobs started: ${segments.join(' ')}`,
  );
}

await ensureBenchDatabase();
for (let n = 1; n <= rounds; n++) await round(n);
