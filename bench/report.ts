// What a workload hands back, ratios to the best peer, and the targets.
import type { System } from './systems/types.ts';
import type { Context } from './harness.ts';
import { fmt, table } from './lib.ts';

export interface Section {
  title: string;
  headers: string[];
  rows: unknown[][];
  notes?: string[];
}

export interface Output {
  sections: Section[];
  /** Raw figures, saved as JSON and read by the target checks. */
  data: Record<string, any>;
  failures: string[];
}

export interface Workload {
  name: string;
  description: string;
  run(ctx: Context & { pending: { system: System; reason: string }[] }): Promise<Output>;
}

export function printSection(s: Section): string {
  return [`### ${s.title}`, '', table(s.headers, s.rows), ...(s.notes?.length ? ['', ...s.notes] : [])].join('\n');
}

/** Best value among the peers (not Rebound, not the raw ceilings). */
export function bestPeer(rows: { system: System; value: number | undefined }[], higherIsBetter = true) {
  const vals = rows.filter((r) => r.system.role === 'peer' && Number.isFinite(r.value)).map((r) => r.value!);
  if (!vals.length) return undefined;
  return higherIsBetter ? Math.max(...vals) : Math.min(...vals);
}

/** "2.31x": how many times better than the best peer (for latency and RSS, lower is better). */
export function ratio(value: number | undefined, best: number | undefined, higherIsBetter = true): string {
  if (value === undefined || best === undefined || !Number.isFinite(value) || !value) return '';
  const r = higherIsBetter ? value / best : best / value;
  return (r < 10 ? r.toFixed(2) : fmt(r)) + 'x';
}

/** Run one measurement per system, turning an exception into a recorded failure. */
export async function each<T>(
  systems: System[],
  failures: string[],
  fn: (s: System) => Promise<T>,
): Promise<{ system: System; result?: T; error?: string }[]> {
  const out: { system: System; result?: T; error?: string }[] = [];
  for (const system of systems) {
    try {
      out.push({ system, result: await fn(system) });
    } catch (e) {
      const error = (e as Error).message;
      failures.push(`${system.name}: ${error}`);
      console.error(`  ! ${system.name} failed: ${(e as Error).stack}`);
      out.push({ system, error });
    }
  }
  return out;
}

// ---------- the targets from issue #3 ----------

export interface Target {
  target: string;
  measured: string;
  verdict: 'met' | 'MISSED' | 'pending' | 'not measured';
}

export function checkTargets(data: Record<string, any>): Target[] {
  const out: Target[] = [];
  const add = (target: string, value: number | undefined, goal: number | undefined, higherIsBetter: boolean, show: (v: number) => string) => {
    if (value === undefined || goal === undefined || !Number.isFinite(value) || !Number.isFinite(goal)) {
      out.push({ target, measured: value === undefined ? '' : show(value), verdict: goal === undefined && value !== undefined ? 'not measured' : 'pending' });
      return;
    }
    const ok = higherIsBetter ? value >= goal : value <= goal;
    out.push({ target, measured: show(value), verdict: ok ? 'met' : 'MISSED' });
  };
  const x = (v: number) => `${v.toFixed(2)}x`;
  const pct = (v: number) => `${Math.round(v * 100)}%`;

  const tp: any[] = data.throughput?.results ?? [];
  if (tp.length) {
    const jobs = Math.max(...tp.map((r) => r.jobs));
    const rate = (name: string) => tp.find((r) => r.jobs === jobs && r.system === name)?.jobsPerSec as number | undefined;
    const pgPeers = ['graphile-worker', 'pg-boss'].map(rate).filter((v): v is number => v !== undefined);
    const bestPg = pgPeers.length ? Math.max(...pgPeers) : undefined;
    const bull = rate('bullmq');
    const rpg = rate('rebound-pg');
    const rsq = rate('rebound-sqlite');
    const div = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : a / b);
    add(`throughput (${jobs} jobs): Rebound PG >= 1.3x best PostgreSQL peer`, div(rpg, bestPg), 1.3, true, x);
    add(`throughput (${jobs} jobs): Rebound PG >= 2x BullMQ`, div(rpg, bull), 2, true, x);
    add(`throughput (${jobs} jobs): Rebound SQLite >= 2x BullMQ`, div(rsq, bull), 2, true, x);
    add(`throughput (${jobs} jobs): Rebound PG >= 70% of raw PG ceiling`, div(rpg, rate('raw-pg')), 0.7, true, pct);
    add(`throughput (${jobs} jobs): Rebound SQLite >= 70% of raw SQLite ceiling`, div(rsq, rate('raw-sqlite')), 0.7, true, pct);
  }
  const lat = (data.latency?.results ?? []).find((r: any) => r.system === 'rebound-pg');
  if (data.latency) {
    add('pickup p50 <= 2 ms on PostgreSQL', lat?.p50, 2, false, (v) => `${fmt(v)} ms`);
    add('pickup p99 <= 10 ms on PostgreSQL', lat?.p99, 10, false, (v) => `${fmt(v)} ms`);
  }
  if (data.enqueue) {
    const er = (name: string) => (data.enqueue.results as any[]).find((r) => r.system === name);
    const rpg = er('rebound-pg');
    const gw = er('graphile-worker');
    add('bulk enqueue >= 1.5x graphile-worker add_jobs (PG)', rpg && gw ? rpg.bulkPerSec / gw.bulkPerSec : undefined, 1.5, true, x);
    add('100 concurrent single enqueues >= 20,000 jobs/s on PG', rpg?.concurrentPerSec, 20000, true, (v) => `${fmt(v)} jobs/s`);
  }
  if (data.backlog) {
    const rows: any[] = data.backlog.results;
    const sizes = [...new Set(rows.map((r) => r.waiting))].sort((a, b) => a - b);
    for (const name of ['rebound-pg', 'rebound-sqlite']) {
      const small = rows.find((r) => r.system === name && r.waiting === sizes[0]);
      const big = rows.find((r) => r.system === name && r.waiting === sizes[sizes.length - 1]);
      add(
        `${name}: claim rate at ${fmt(sizes[sizes.length - 1])} waiting >= 80% of rate at ${fmt(sizes[0])}`,
        small && big ? big.claimsPerSec / small.claimsPerSec : undefined,
        0.8,
        true,
        pct,
      );
    }
  }
  return out;
}
