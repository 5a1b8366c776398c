/**
 * The dashboard's charts over time: per 5-second bucket, completions, retries,
 * deaths, run and pickup latency percentiles, errors by job type, queue depth
 * and dead letter queue size. Every process that runs jobs writes per-minute
 * rollups to the store (observability/stats.ts); this samples them every
 * bucket and keeps the difference from the last sample, so the charts cover
 * workers in every process, supervised or not. Kept in memory for 30 minutes.
 */
import { percentiles as histogramPercentiles } from '../observability/stats.ts';
import type { Rebound } from '../rebound.ts';

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

interface Bucket {
  at: number;
  completed: number;
  retried: number;
  dead: number;
  run: Map<number, number>;
  pickup: Map<number, number>;
  errorsByType: Record<string, number>;
  completedByQueue: Record<string, number>;
  dlqSize: number | null;
  depth: number | null;
}

export interface SeriesPoint {
  at: number;
  completed: number;
  failed: number;
  dead: number;
  /** Completed per second. */
  throughput: number;
  /** Completed / (completed + retried + dead), or null with no outcomes. */
  successRate: number | null;
  run: Percentiles | null;
  pickup: Percentiles | null;
  dlqSize: number | null;
  depth: number | null;
}

const MINUTE = 60_000;

/** Cumulative counts of one minute's rollups, as last read. */
interface MinuteSnapshot {
  outcomes: Map<string, number>;
  latency: Map<string, number>;
}

export class LiveSeries {
  private readonly buckets: Bucket[] = [];
  private readonly seen = new Map<number, MinuteSnapshot>();
  private sampler: NodeJS.Timeout | null = null;
  private sampling: Promise<void> = Promise.resolve();

  constructor(
    private readonly rebound: Rebound,
    readonly bucketMs = 5000,
    readonly keep = 360,
  ) {}

  start(): this {
    this.sampler = setInterval(() => void this.sample(), this.bucketMs);
    this.sampler.unref();
    void this.sample();
    return this;
  }

  stop(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
  }

  /** Reads the rollups and counts now (also called by tests instead of waiting for the timer). */
  sample(): Promise<void> {
    this.sampling = this.sampling.then(() => this.read()).catch(() => {
      // The store is briefly unreachable: this bucket stays empty.
    });
    return this.sampling;
  }

  private async read() {
    const now = this.rebound.now();
    // This process's own buffered rollups first, so its work shows at once.
    await this.rebound.visibility.stats?.flush();
    const minute = Math.floor(now / MINUTE) * MINUTE;
    // The previous minute too: rollups flushed just after it ended still count.
    const [counts, ...perMinute] = await Promise.all([
      this.rebound.countByState(),
      ...[minute - MINUTE, minute].map(async (m) => ({ m, rows: await this.rebound.store.visibility.readStats({ fromMinute: m, toMinute: m }) })),
    ]);
    const b = this.bucket(now);
    b.dlqSize = counts.dead ?? 0;
    b.depth = (counts.available ?? 0) + (counts.scheduled ?? 0);
    const queueOf = (type: string) => this.rebound.definitions.get(type)?.queue ?? 'default';
    const current = new Map<number, MinuteSnapshot>();
    for (const { m, rows } of perMinute) {
      const s: MinuteSnapshot = { outcomes: new Map(), latency: new Map() };
      for (const r of rows.outcomes) s.outcomes.set(`${r.type}\0${r.outcome}`, (s.outcomes.get(`${r.type}\0${r.outcome}`) ?? 0) + r.count);
      for (const l of rows.latency) s.latency.set(`${l.kind}\0${l.bucket}`, (s.latency.get(`${l.kind}\0${l.bucket}`) ?? 0) + l.count);
      current.set(m, s);
    }
    const first = this.seen.size === 0;
    for (const [m, s] of current) {
      const before = this.seen.get(m);
      this.seen.set(m, s);
      // The first read only sets the baseline: what happened before the server started is not "now".
      if (first) continue;
      for (const [key, count] of s.outcomes) {
        const d = count - (before?.outcomes.get(key) ?? 0);
        if (d <= 0) continue;
        const [type, outcome] = key.split('\0');
        if (outcome === 'completed') {
          b.completed += d;
          b.completedByQueue[queueOf(type)] = (b.completedByQueue[queueOf(type)] ?? 0) + d;
        } else if (outcome === 'retried' || outcome === 'dead') {
          b[outcome] += d;
          b.errorsByType[type] = (b.errorsByType[type] ?? 0) + d;
        }
      }
      for (const [key, count] of s.latency) {
        const d = count - (before?.latency.get(key) ?? 0);
        if (d <= 0) continue;
        const [kind, bucket] = key.split('\0');
        const hist = kind === 'run' ? b.run : kind === 'pickup' ? b.pickup : null;
        hist?.set(Number(bucket), (hist.get(Number(bucket)) ?? 0) + d);
      }
    }
    for (const m of this.seen.keys()) if (m < minute - MINUTE) this.seen.delete(m);
  }

  private bucket(now: number): Bucket {
    const at = Math.floor(now / this.bucketMs) * this.bucketMs;
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.at === at) return last;
    const b: Bucket = { at, completed: 0, retried: 0, dead: 0, run: new Map(), pickup: new Map(), errorsByType: byName(), completedByQueue: byName(), dlqSize: null, depth: null };
    this.buckets.push(b);
    if (this.buckets.length > this.keep) this.buckets.shift();
    return b;
  }

  /** Points for the last `windowMs`, oldest first, one per bucket (empty buckets included). */
  points(windowMs = 10 * 60_000): SeriesPoint[] {
    const end = Math.floor(this.rebound.now() / this.bucketMs) * this.bucketMs;
    const start = end - windowMs + this.bucketMs;
    const byAt = new Map(this.buckets.map((b) => [b.at, b]));
    const out: SeriesPoint[] = [];
    for (let at = start; at <= end; at += this.bucketMs) {
      const b = byAt.get(at);
      const outcomes = b ? b.completed + b.retried + b.dead : 0;
      out.push({
        at,
        completed: b?.completed ?? 0,
        failed: b?.retried ?? 0,
        dead: b?.dead ?? 0,
        throughput: (b?.completed ?? 0) / (this.bucketMs / 1000),
        successRate: outcomes ? b!.completed / outcomes : null,
        run: b ? percentilesOf(b.run) : null,
        pickup: b ? percentilesOf(b.pickup) : null,
        dlqSize: b?.dlqSize ?? null,
        depth: b?.depth ?? null,
      });
    }
    return out;
  }

  /** Errors (retries and deaths) by job type over the last `windowMs`. */
  errorsByType(windowMs = 10 * 60_000): Record<string, number> {
    const since = this.rebound.now() - windowMs;
    const out = byName();
    for (const b of this.buckets) {
      if (b.at < since) continue;
      for (const [t, n] of Object.entries(b.errorsByType)) out[t] = (out[t] ?? 0) + n;
    }
    return out;
  }

  /** Completions per second over the last minute, of one queue or of all. */
  recentThroughput(queue?: string): number {
    const since = this.rebound.now() - 60_000;
    const done = this.buckets
      .filter((b) => b.at >= since)
      .reduce((n, b) => n + (queue === undefined ? b.completed : (b.completedByQueue[queue] ?? 0)), 0);
    return done / 60;
  }
}

/** Counts keyed by a job type or queue name: no prototype, so `constructor`, `toString` and `__proto__` are names like any other. */
function byName(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

function percentilesOf(hist: Map<number, number>): Percentiles | null {
  if (hist.size === 0) return null;
  const p = histogramPercentiles([...hist].map(([bucket, count]) => ({ bucket, count })));
  return p.p50 == null ? null : { p50: p.p50, p95: p.p95 ?? p.p50, p99: p.p99 ?? p.p50 };
}
