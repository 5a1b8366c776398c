/**
 * Would the SQLite store gain from running its hot statements on a worker thread, so that they and the handlers use
 * both cores? (docs/benchmarks.md, next step 5.) Not part of `npm run bench`:
 *
 *   node --import tsx bench/probes/sqlite-thread.ts [pairs] [jobs]
 *
 * Fills one SQLite file with `jobs` no-op jobs (default 100,000), then drains a copy of it in fresh processes,
 * alternating the store as it is ("plain") with one whose claims and completions run on a worker thread with their
 * own connection ("thread"): the claimed rows cross as one JSON text per batch, the completions likewise (and go
 * through the store's own completeJobs there). Prints
 * µs per job of wall time, of the process's CPU (every thread), and of the thread's busy time.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { CLAIMED_COLUMNS, claimedJob } from '../../src/store/sqlite/rows.ts';
import { orderingHead } from '../../src/store/sqlite/ordering.ts';
import type { ClaimParams, Completion } from '../../src/store/store.ts';
import type { Job } from '../../src/job.ts';

const SELF = fileURLToPath(import.meta.url);
const BASE = '/tmp/rebound-thread-probe.base.db';
const FILE = '/tmp/rebound-thread-probe.db';

/** The store as it is, but claims and completions go to a worker thread holding its own connection to the file. */
class ThreadedSqliteStore extends SqliteStore {
  private readonly thread: Worker;
  private seq = 0;
  private readonly pending = new Map<number, (reply: { value?: unknown; error?: string }) => void>();

  constructor(path: string) {
    super(path);
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    this.thread = new Worker(boot, { eval: true, workerData: { path } });
    this.thread.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
  }

  private call(op: string, ...args: unknown[]): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (m) => (m.error ? reject(new Error(m.error)) : resolve(m.value)));
      this.thread.postMessage({ id, op, args });
    });
  }

  override async claimJobs(p: ClaimParams): Promise<Job[]> {
    const rows = JSON.parse((await this.call('claim', p)) as string) as unknown[][];
    return rows.map((r) => claimedJob(r, p.workerId, p.now, p.now + p.leaseMs));
  }

  override async completeJobs(items: Completion[], now: number): Promise<boolean[]> {
    const refused = (await this.call('complete', JSON.stringify(items), now)) as string | null;
    return refused === null ? items.map(() => true) : (JSON.parse(refused) as boolean[]);
  }

  busyMs(): Promise<number> {
    return this.call('busy') as Promise<number>;
  }

  override async close(): Promise<void> {
    await this.thread.terminate();
    await super.close();
  }
}

/**
 * The thread's side, on its own connection: the store's own completions, and its claim's SQL returning the rows
 * (as arrays) instead of jobs, so that a batch crosses as compact JSON and the main thread builds the jobs.
 */
function serveThread() {
  const store = new SqliteStore(workerData.path);
  const db = store.database;
  let busy = 0;
  const list = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  const ops: Record<string, (...args: never[]) => unknown> = {
    claim(p: ClaimParams) {
      const where = `state IN ('available', 'scheduled') AND queue IN (${list(p.queues.length)}) AND type IN (${list(p.types.length)})
                     AND run_at <= ? AND isolate = ?`;
      const args = [...p.queues, ...p.types, p.now, p.isolated ? 1 : 0];
      if (!db.prepare(`SELECT 1 FROM jobs WHERE ${where} LIMIT 1`).get(...args)) return '[]';
      const rows = db.transaction(() => {
        const batch = db
          .prepare(`SELECT ${CLAIMED_COLUMNS} FROM jobs WHERE ${where} AND ${orderingHead('?')} ORDER BY priority, run_at, id LIMIT ?`)
          .raw(true)
          .all(...args, p.now, p.isolated ? 1 : p.limit) as unknown[][];
        db.prepare(
          `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
                  lease_owner = ?, lease_expires_at = ?, started_at = ?
           WHERE id IN (SELECT value FROM json_each(?))`,
        ).run(p.workerId, p.now + p.leaseMs, p.now, JSON.stringify(batch.map((r) => r[0])));
        return batch;
      }).immediate();
      return JSON.stringify(rows);
    },
    async complete(items: string, now: number) {
      const accepted = await store.completeJobs(JSON.parse(items) as Completion[], now);
      return accepted.every(Boolean) ? null : JSON.stringify(accepted);
    },
    busy: () => busy,
  };
  parentPort!.on('message', async (m: { id: number; op: string; args: never[] }) => {
    const t = performance.now();
    try {
      const value = await ops[m.op](...m.args);
      busy += performance.now() - t;
      parentPort!.postMessage({ id: m.id, value });
    } catch (e) {
      parentPort!.postMessage({ id: m.id, error: String(e) });
    }
  });
}

/** One fresh process's drain of FILE; prints one line of JSON. */
async function drain(mode: 'plain' | 'thread', jobs: number) {
  const { createRebound, defineJob } = await import('../../src/index.ts');
  let ran = 0;
  let allRan!: () => void;
  const done = new Promise<void>((resolve) => (allRan = resolve));
  const noop = defineJob('noop', { handler: async () => void (++ran === jobs && allRan()) });
  const store = mode === 'thread' ? new ThreadedSqliteStore(FILE) : new SqliteStore(FILE);
  const rebound = await createRebound({ store, jobs: [noop] });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const worker = rebound.work({ concurrency: 50 });
  await done;
  while ((await rebound.countJobs({ state: 'completed' })) < jobs) await new Promise((r) => setTimeout(r, 5));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const busy = store instanceof ThreadedSqliteStore ? await store.busyMs() : 0;
  await worker.stop();
  await rebound.close();
  const perJob = (v: number) => +(v / jobs).toFixed(2);
  console.log(JSON.stringify({ mode, wallUs: perJob(ms * 1000), cpuUs: perJob(cpu.user + cpu.system), threadBusyUs: perJob(busy * 1000) }));
}

async function fill(jobs: number) {
  for (const f of [BASE, `${BASE}-wal`, `${BASE}-shm`]) rmSync(f, { force: true });
  const { createRebound, defineJob } = await import('../../src/index.ts');
  const rebound = await createRebound({ store: `sqlite:${BASE}`, jobs: [defineJob('noop', { handler: async () => {} })] });
  for (let i = 0; i < jobs; i += 1000) {
    await rebound.enqueueMany(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ type: 'noop', payload: { i: i + k } })));
  }
  await rebound.close();
}

if (!isMainThread) serveThread();
else if (process.argv[2] === 'drain') await drain(process.argv[3] as 'plain' | 'thread', Number(process.argv[4]));
else {
  process.env.REBOUND_LOG_LEVEL ??= 'warn';
  const pairs = Number(process.argv[2] ?? 5);
  const jobs = Number(process.argv[3] ?? 100_000);
  await fill(jobs);
  for (let i = 0; i < pairs; i++) {
    for (const mode of ['plain', 'thread']) {
      for (const f of [`${FILE}-wal`, `${FILE}-shm`]) rmSync(f, { force: true });
      copyFileSync(BASE, FILE);
      process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', SELF, 'drain', mode, String(jobs)], { encoding: 'utf8' }));
    }
  }
}
