// Shared helpers: where the services are, the PostgreSQL bench database,
// statistics, table printing and reading a process's peak RSS.
import { readFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pg from 'pg';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = path.resolve(BENCH_DIR, '..');
export const TMP_DIR = path.join(BENCH_DIR, '.tmp');

/** Every worker runs this many jobs at once unless --concurrency says otherwise. */
export const DEFAULT_CONCURRENCY = 50;

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/rebound_bench';

/** DATABASE_URL when set (each system keeps to its own schema in it), else the rebound_bench database. */
export const PG_URL = process.env.DATABASE_URL || DEFAULT_PG_URL;
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
/** Every BullMQ key lives under this prefix; cleanup deletes only these keys. */
export const REDIS_PREFIX = 'rebound-bench';

export function withSearchParam(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

/** Create the default bench database if we are using it and it does not exist. */
export async function ensureBenchDatabase(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  const admin = new pg.Client({ connectionString: withDatabase(DEFAULT_PG_URL, 'postgres') });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', ['rebound_bench']);
    if (!rowCount) await admin.query('create database rebound_bench');
  } finally {
    await admin.end();
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

/** Run statements on a short-lived connection to the bench database. */
export async function pgExec(...statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const out: pg.QueryResult[] = [];
    for (const s of statements) out.push(await client.query(s));
    return out;
  } finally {
    await client.end();
  }
}

export function tmpPath(name: string): string {
  mkdirSync(TMP_DIR, { recursive: true });
  return path.join(TMP_DIR, name);
}

// ---------- measurements ----------

export const now = (): number => performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Peak resident set size (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function payloads(n: number, from = 0): { i: number }[] {
  return Array.from({ length: n }, (_, k) => ({ i: from + k }));
}

// ---------- tables ----------

export function fmt(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return '-';
    if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
    if (Math.abs(v) >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  return String(v);
}

/** A plain Markdown table, which also reads well in a terminal. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => fmt(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  // Columns of figures are right-aligned, columns of names left-aligned.
  const right = headers.map((_, i) => rows.some((r) => typeof r[i] === 'number' || /^[\d.,]+(x|%)$/.test(String(r[i]))));
  const line = (r: string[]) => '| ' + r.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => '-'.repeat(w + 1) + (right[i] ? ':' : '-')).join('|') + '|';
  return [line(headers), sep, ...cells.map(line)].join('\n');
}

// ---------- the raw-SQL worker loop (shared by raw-pg and raw-sqlite) ----------

export interface BatchStore<Id> {
  claim(limit: number): Promise<{ id: Id; payload: Record<string, unknown> }[]>;
  complete(ids: Id[]): Promise<void>;
}

/**
 * `loops` claim-run-complete loops, each owning an equal share of
 * `concurrency`. A loop claims its share, runs the handlers, and sends the
 * completion without waiting for it before claiming again, so claims and
 * completions of different batches overlap.
 */
export function runBatchLoops<Id>(
  store: BatchStore<Id>,
  opts: { concurrency: number; loops: number; idleMs: number; handler: (p: Record<string, unknown>) => unknown },
): { stop(): Promise<void> } {
  let stopping = false;
  const pending = new Set<Promise<void>>();
  const loops = Math.min(opts.loops, opts.concurrency);
  const share = (k: number) => Math.floor(opts.concurrency / loops) + (k < opts.concurrency % loops ? 1 : 0);
  const loop = async (size: number) => {
    while (!stopping) {
      const jobs = await store.claim(size);
      if (!jobs.length) {
        await sleep(opts.idleMs);
        continue;
      }
      await Promise.all(jobs.map((j) => opts.handler(j.payload)));
      const p = store.complete(jobs.map((j) => j.id)).finally(() => pending.delete(p));
      pending.add(p);
    }
  };
  const running = Array.from({ length: loops }, (_, k) => loop(share(k)));
  return {
    async stop() {
      stopping = true;
      await Promise.all(running);
      await Promise.all(pending);
    },
  };
}
