/**
 * The dashboard's charts over time, fed by this process's engine events:
 * per 5-second bucket, completions, retries, deaths, pickup and run latency
 * percentiles, and errors by job type. Kept in memory for the last 30 minutes.
 * (Workers in other processes are seen through the store counts only.)
 */
import type { Rebound } from '../rebound.ts';

export interface Bucket {
  at: number;
  completed: number;
  retried: number;
  dead: number;
  runMs: number[];
  pickupMs: number[];
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

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

const MAX_SAMPLES = 2000;

export class LiveSeries {
  private readonly buckets: Bucket[] = [];
  private readonly stops: (() => void)[] = [];
  private sampler: NodeJS.Timeout | null = null;

  constructor(
    private readonly rebound: Rebound,
    readonly bucketMs = 5000,
    readonly keep = 360,
  ) {}

  start(): this {
    const ev = this.rebound.events;
    this.stops.push(
      ev.on('job:completed', (e) => {
        const b = this.bucket();
        b.completed++;
        b.completedByQueue[e.job.queue] = (b.completedByQueue[e.job.queue] ?? 0) + 1;
        sample(b.runMs, e.durationMs);
        if (e.job.startedAt != null) sample(b.pickupMs, Math.max(0, e.job.startedAt - e.job.runAt));
      }),
      ev.on('job:retry', (e) => {
        const b = this.bucket();
        b.retried++;
        b.errorsByType[e.job.type] = (b.errorsByType[e.job.type] ?? 0) + 1;
      }),
      ev.on('job:dead', (e) => {
        const b = this.bucket();
        b.dead++;
        b.errorsByType[e.job.type] = (b.errorsByType[e.job.type] ?? 0) + 1;
      }),
    );
    this.sampler = setInterval(() => void this.sampleCounts(), this.bucketMs);
    this.sampler.unref();
    void this.sampleCounts();
    return this;
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
  }

  private async sampleCounts() {
    try {
      const counts = await this.rebound.countByState();
      const b = this.bucket();
      b.dlqSize = counts.dead ?? 0;
      b.depth = (counts.available ?? 0) + (counts.scheduled ?? 0);
    } catch {
      // The store is briefly unreachable: the point stays empty.
    }
  }

  private bucket(): Bucket {
    const at = Math.floor(this.rebound.now() / this.bucketMs) * this.bucketMs;
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.at === at) return last;
    const b: Bucket = { at, completed: 0, retried: 0, dead: 0, runMs: [], pickupMs: [], errorsByType: {}, completedByQueue: {}, dlqSize: null, depth: null };
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
        run: b ? percentiles(b.runMs) : null,
        pickup: b ? percentiles(b.pickupMs) : null,
        dlqSize: b?.dlqSize ?? null,
        depth: b?.depth ?? null,
      });
    }
    return out;
  }

  /** Errors (retries and deaths) by job type over the last `windowMs`. */
  errorsByType(windowMs = 10 * 60_000): Record<string, number> {
    const since = this.rebound.now() - windowMs;
    const out: Record<string, number> = {};
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

function sample(into: number[], v: number) {
  if (into.length < MAX_SAMPLES) into.push(v);
  else into[Math.floor(Math.random() * MAX_SAMPLES)] = v;
}

export function percentiles(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}
