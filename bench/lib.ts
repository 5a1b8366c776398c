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

/**
 * Let PostgreSQL settle before a measurement: VACUUM ANALYZE the system's own
 * tables (a backlog that has waited a while has been through autovacuum),
 * CHECKPOINT (so a checkpoint forced by the fill's WAL does not land inside
 * the measurement), then wait up to 10 s for autovacuum workers to finish.
 */
export async function settlePostgres(schema?: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    if (schema) {
      const { rows } = await client.query(
        `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition`,
        [schema],
      );
      for (const { t } of rows) await client.query(`vacuum (analyze) ${t}`);
    }
    // Every system's reset drops its schema and its setup creates it again, leaving dead rows in the system
    // catalogs (pg_attribute, pg_class, pg_depend...), which autovacuum may be off to clean (as in CI here):
    // a backend that looks up a table then wades through them, and the later systems of a run would pay for the
    // earlier ones' schemas.
    const { rows: catalogs } = await client.query(
      `select format('pg_catalog.%I', relname) as t from pg_stat_sys_tables where schemaname = 'pg_catalog' and n_dead_tup > 0`,
    );
    if (catalogs.length) await client.query(`vacuum ${catalogs.map((c) => c.t).join(', ')}`);
    await client.query('checkpoint').catch(() => {}); // needs superuser or pg_checkpoint
    for (let i = 0; i < 100; i++) {
      const { rows } = await client.query(
        `select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker' and datname = current_database()`,
      );
      if (!rows[0].n) break;
      await sleep(100);
    }
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
    if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
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

// ---------- the raw-SQL worker (shared by raw-pg and raw-sqlite) ----------

export interface BatchStore<Id> {
  claim(limit: number): Promise<{ id: Id; payload: Record<string, unknown> }[]>;
  complete(ids: Id[]): Promise<void>;
}

/**
 * The least a job queue's worker has to do, done in batches: claim `batch`
 * jobs into a local queue (refilling at half empty), run them on
 * `concurrency` slots, and commit finished ids together, with at most
 * `inFlight` claims and `inFlight` completions on the wire at once.
 */
export function runLocalQueue<Id>(
  store: BatchStore<Id>,
  opts: { concurrency: number; batch: number; inFlight: number; idleMs: number; handler: (p: Record<string, unknown>) => unknown },
): { stop(): Promise<void> } {
  let stopping = false;
  const queue: { id: Id; payload: Record<string, unknown> }[] = [];
  const done: Id[] = [];
  let claiming = 0;
  let completing = 0;
  let idle: Promise<void> | undefined;
  const wakers = new Set<() => void>();
  const flushes = new Set<Promise<void>>();
  const wake = () => wakers.forEach((w) => w());

  const refill = () => {
    if (stopping || idle || claiming >= opts.inFlight || queue.length + claiming * opts.batch > opts.batch) return;
    claiming++;
    store.claim(opts.batch).then((jobs) => {
      claiming--;
      queue.push(...jobs);
      if (!jobs.length && !queue.length) idle = sleep(opts.idleMs).then(() => void (idle = undefined));
      wake();
      refill();
    });
  };
  const flush = () => {
    if (!done.length || completing >= opts.inFlight) return;
    completing++;
    const p = store.complete(done.splice(0)).then(() => {
      completing--;
      flushes.delete(p);
      flush();
    });
    flushes.add(p);
  };
  const slot = async () => {
    while (!stopping) {
      const job = queue.shift();
      if (!job) {
        refill();
        await new Promise<void>((r) => {
          const w = () => (wakers.delete(w), r());
          wakers.add(w);
          if (idle) idle.then(w);
        });
        continue;
      }
      if (queue.length < opts.batch / 2) refill();
      await opts.handler(job.payload);
      done.push(job.id);
      if (done.length === 1) setImmediate(flush);
    }
  };
  const slots = Array.from({ length: opts.concurrency }, slot);
  return {
    async stop() {
      stopping = true;
      wake();
      await Promise.all(slots);
      while (claiming || done.length || flushes.size) {
        flush();
        await Promise.all([...flushes, sleep(5)]);
      }
    },
  };
}

/** Run `fn` over `items` with at most `limit` running at once. */
export async function mapLimited<T>(items: T[], limit: number, fn: (item: T) => unknown): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}
