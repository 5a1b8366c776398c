// The benchmark runner: `node bin/bench.mjs [workload...] [--smoke|--full]`.
// Runs Rebound (PostgreSQL, SQLite), graphile-worker, pg-boss, BullMQ and the
// raw-SQL ceilings side by side, prints Markdown tables with ratios to the best
// peer, checks the issue's targets and saves raw results as JSON.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DIAGNOSTIC_SYSTEMS, SYSTEMS, system } from './systems/index.ts';
import type { System } from './systems/types.ts';
import { liveWorkers, type Context, type Mode } from './harness.ts';
import { checkTargets, printSection, type Output, type Workload } from './report.ts';
import { BENCH_DIR, DEFAULT_CONCURRENCY, PG_URL, REDIS_URL, REPO_DIR, ensureBenchDatabase, pgExec, table } from './lib.ts';
import { throughput } from './workloads/throughput.ts';
import { enqueue } from './workloads/enqueue.ts';
import { latency } from './workloads/latency.ts';
import { backlog } from './workloads/backlog.ts';
import { scaleout } from './workloads/scaleout.ts';
import { memory } from './workloads/memory.ts';
import { raw } from './workloads/raw.ts';

const WORKLOADS: Workload[] = [throughput, enqueue, latency, backlog, scaleout, memory, raw];
const TIMEOUT_S = { smoke: 300, default: 1800, full: 7200 };

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    systems: { type: 'string' },
    concurrency: { type: 'string', default: String(DEFAULT_CONCURRENCY) },
    repeat: { type: 'string' },
    save: { type: 'boolean', default: false },
    'no-save': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  console.log(`usage: npm run bench -- [workload ...] [--smoke | --full] [--systems a,b] [--concurrency N] [--repeat N] [--no-save | --save]

workloads (default: all, in this order):
${WORKLOADS.map((w) => `  ${w.name.padEnd(11)} ${w.description}`).join('\n')}
systems: ${SYSTEMS.map((s) => s.name).join(', ')}
diagnostic systems (only with --systems): ${DIAGNOSTIC_SYSTEMS.map((s) => s.name).join(', ')}
--smoke  a few hundred jobs per system, all workloads, ~1 minute; results are not saved
--repeat drains (throughput, scale-out, raw) and enqueue rates are run N times and the median is reported (default 3; smoke 1)
--full   200,000-job drains and a 1,000,000-job backlog (tens of minutes)
env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/rebound_bench), REDIS_URL (default redis://127.0.0.1:6379)`);
  process.exit(0);
}

const mode: Mode = flags.smoke ? 'smoke' : flags.full ? 'full' : 'default';
// A full run's results sit next to the same day's default run instead of replacing them.
const suffix = mode === 'full' ? '-full' : '';
const save = flags.save || (mode !== 'smoke' && !flags['no-save']);
const workloads = positionals.length
  ? positionals.map((n) => WORKLOADS.find((w) => w.name === n) ?? fail(`unknown workload "${n}"; known: ${WORKLOADS.map((w) => w.name).join(', ')}`))
  : WORKLOADS;
const selected = flags.systems ? flags.systems.split(',').map((n) => system(n.trim())) : SYSTEMS;

function fail(msg: string): never {
  console.error(msg);
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`bench: gave up after ${TIMEOUT_S[mode]} s`);
  process.exit(1);
}, TIMEOUT_S[mode] * 1000);
watchdog.unref();
process.on('exit', () => liveWorkers.forEach((w) => w.kill()));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

// ---------- go ----------

const started = new Date();
console.error(`bench: mode ${mode}, workloads ${workloads.map((w) => w.name).join(', ')}, concurrency ${flags.concurrency}`);
await ensureBenchDatabase();
const machine = await describeMachine();

const available: System[] = [];
const pending: { system: System; reason: string }[] = [];
for (const s of selected) {
  const reason = await s.unavailable();
  if (reason) {
    pending.push({ system: s, reason });
    console.error(`bench: ${s.name} not run: ${reason}`);
  } else available.push(s);
}

const ctx: Context & { pending: typeof pending } = {
  mode,
  concurrency: Number(flags.concurrency),
  repeats: Number(flags.repeat ?? (mode === 'smoke' ? 1 : 3)),
  systems: available,
  pending,
  log: (msg) => console.error(`  ${msg}`),
  drains: new Map(),
};

const outputs: Record<string, Output> = {};
const failures: string[] = [];
const date = started.toISOString().slice(0, 10);
for (const w of workloads) {
  console.error(`\n== ${w.name}: ${w.description}`);
  const t0 = Date.now();
  const busyBefore = await cpuBusy();
  if (busyBefore > 0.25) {
    console.error(`bench: warning: the CPUs were ${Math.round(busyBefore * 100)}% busy with other work before "${w.name}": the figures will be skewed`);
  }
  const out = await w.run(ctx);
  const busyAfter = await cpuBusy();
  outputs[w.name] = out;
  failures.push(...out.failures.map((f) => `${w.name}: ${f}`));
  console.log('\n' + out.sections.map(printSection).join('\n\n'));
  console.error(`   (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (save) {
    const dir = path.join(BENCH_DIR, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${date}-${w.name}${suffix}.json`);
    const record = {
      workload: w.name,
      date: started.toISOString(),
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      mode,
      concurrency: ctx.concurrency,
      repeats: ctx.repeats,
      machine,
      systems: Object.fromEntries(selected.map((s) => [s.name, { store: s.store, role: s.role, config: s.config }])),
      pending: pending.map((p) => ({ system: p.system.name, reason: p.reason })),
      failures: out.failures,
      // Share of CPU time busy over one idle second before and after the workload (other work on the machine).
      cpuBusyOutside: { before: busyBefore, after: busyAfter },
      seconds: (Date.now() - t0) / 1000,
      ...out.data,
    };
    writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  }
}

const targets = checkTargets(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.data])));
if (targets.length) {
  console.log('\n### Targets (issue #3)\n\n' + table(['target', 'measured', 'verdict'], targets.map((t) => [t.target, t.measured, t.verdict])));
}
console.log(`\nconcurrency ${ctx.concurrency} per worker process; ${machine.cpus} cores (${machine.cpuModel}); PostgreSQL ${machine.postgres}; Redis ${machine.redis}; Node ${process.version}`);
if (save) console.log(`raw results: bench/results/${date}-<workload>${suffix}.json`);

const problems = [...failures, ...pending.map((p) => `${p.system.name} not run: ${p.reason}`)];
if (problems.length) {
  console.error(`\nbench: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.error(`\nbench: ok (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)`);
process.exit(0);

/** Share of all CPU time that was busy during `ms` while the bench itself is idle. */
async function cpuBusy(ms = 1000): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = read();
    await new Promise((r) => setTimeout(r, ms));
    const b = read();
    return 1 - (b.idle - a.idle) / (b.total - a.total);
  } catch {
    return NaN;
  }
}

async function describeMachine() {
  const version = (dir: string) => {
    try {
      return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  const versions = Object.fromEntries(
    ['bullmq', 'graphile-worker', 'pg-boss', 'ioredis', 'pg', 'better-sqlite3'].map((p) => [
      p,
      version(path.join(BENCH_DIR, 'node_modules', p)) ?? version(path.join(REPO_DIR, 'node_modules', p)),
    ]),
  );
  const info: Record<string, any> = {
    versions: { rebound: version(REPO_DIR), ...versions },
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    databaseUrl: PG_URL.replace(/:[^:@/]*@/, ':***@'),
    redisUrl: REDIS_URL,
  };
  try {
    const [v, settings] = await pgExec(
      'show server_version',
      `select name, setting, unit from pg_settings where name in
        ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_level', 'work_mem', 'max_wal_size')`,
    );
    info.postgres = v.rows[0].server_version;
    info.postgresSettings = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting + (r.unit ? ` ${r.unit}` : '')]));
  } catch (e) {
    info.postgres = `unavailable: ${(e as Error).message}`;
  }
  try {
    const { Redis } = await import('ioredis');
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await r.connect();
    const text = await r.info('server');
    info.redis = /redis_version:(\S+)/.exec(text)?.[1];
    const conf = async (k: string) => ((await r.config('GET', k)) as string[])[1];
    info.redisPersistence = { save: (await conf('save')) || '(off)', appendonly: await conf('appendonly') };
    r.disconnect();
  } catch (e) {
    info.redis = `unavailable: ${(e as Error).message}`;
  }
  return info;
}
