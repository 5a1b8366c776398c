/**
 * Job statistics from rollups, never from scanning history: a recorder turns
 * events into per-minute buckets per job type (outcome counts, latency
 * histograms, error counts by fingerprint) and adds them to the store in one
 * batch every few seconds. A query reads only the minutes of its window.
 *
 * Latencies go into log-scale buckets (each bucket 2^(1/8) wider than the one
 * before), so a percentile is exact to within about 4.5% whatever the range.
 */
import { ValidationError } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import type { ErrorInfo, Job } from '../job.ts';
import { normalizeMessage } from '../engine/error-info.ts';
import type { Store } from '../store/store.ts';
import type { StatsBucket, StatsRows } from '../store/visibility.ts';
import { on, type Unsubscribe } from './subscribe.ts';

const RATIO = 2 ** (1 / 8);
const LOG_RATIO = Math.log(RATIO);
const MINUTE = 60_000;

export function latencyBucket(ms: number): number {
  return ms <= 1 ? 0 : Math.ceil(Math.log(ms) / LOG_RATIO);
}

/** The value a bucket stands for: the geometric middle of its range. */
export function bucketValue(bucket: number): number {
  return bucket <= 0 ? 1 : RATIO ** (bucket - 0.5);
}

export interface StatsOptions {
  /** How often buffered rollups are written (default 2000 ms). */
  flushIntervalMs?: number;
  /** Rollups older than this are deleted, checked once an hour (default 31 days, the longest window). */
  retentionMs?: number;
}

/** A bucket being filled: latency counts keyed by kind and bucket index, turned into rows at flush. */
interface PendingBucket extends Omit<StatsBucket, 'latency'> {
  latency: Map<string, { kind: string; bucket: number; count: number }>;
}

export class StatsRecorder {
  private pending = new Map<string, PendingBucket>();
  private last: { minute: number; type: string; key: string; bucket: PendingBucket } | null = null;
  private readonly off: Unsubscribe[];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private nextPruneAt = 0;
  private retentionMs: number;

  constructor(
    private readonly deps: { events: ReboundEmitter; store: Store; now: () => number },
    opts: StatsOptions = {},
  ) {
    const ev = deps.events;
    this.off = [
      on(ev, 'job:enqueued', (e) => !e.deduplicated && this.count(e.job.type, 'enqueued')),
      on(ev, 'job:started', (e) => {
        this.count(e.job.type, 'started');
        if (e.job.startedAt != null) this.latency(e.job.type, 'pickup', e.job.startedAt - e.job.runAt);
      }),
      on(ev, 'job:completed', (e) => {
        // A compensated workflow failed for good (its steps were undone): counted apart, against the success rate.
        this.count(e.type, e.state === 'compensated' ? 'compensated' : 'completed');
        this.latency(e.type, 'run', e.durationMs);
      }),
      on(ev, 'job:retry', (e) => this.failed(e.job, 'retried', e.error, e.durationMs)),
      on(ev, 'job:dead', (e) => this.failed(e.job, 'dead', e.error, e.durationMs)),
    ];
    this.retentionMs = opts.retentionMs ?? 31 * 24 * 3600_000;
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 2000);
    this.timer.unref();
  }

  private bucket(type: string): PendingBucket {
    const minute = Math.floor(this.deps.now() / MINUTE) * MINUTE;
    // Most events in a row are of one type in one minute: skip building the key for them.
    const last = this.last;
    if (last && last.minute === minute && last.type === type && this.pending.get(last.key) === last.bucket) return last.bucket;
    const key = `${minute}\0${type}`;
    let b = this.pending.get(key);
    if (!b) this.pending.set(key, (b = { minute, type, outcomes: {}, latency: new Map(), errors: [] }));
    this.last = { minute, type, key, bucket: b };
    return b;
  }

  private count(type: string, outcome: string) {
    const b = this.bucket(type);
    b.outcomes[outcome] = (b.outcomes[outcome] ?? 0) + 1;
  }

  /** Records one latency observation (ms); also used by tests to feed a known distribution. */
  latency(type: string, kind: 'run' | 'pickup', ms: number) {
    const b = this.bucket(type);
    const bucket = latencyBucket(Math.max(0, ms));
    const key = `${kind}:${bucket}`;
    const hit = b.latency.get(key);
    if (hit) hit.count++;
    else b.latency.set(key, { kind, bucket, count: 1 });
  }

  private failed(job: Job, outcome: string, error: ErrorInfo, durationMs?: number) {
    this.count(job.type, outcome);
    if (durationMs != null) this.latency(job.type, 'run', durationMs);
    const b = this.bucket(job.type);
    const hit = b.errors.find((x) => x.fingerprint === error.fingerprint);
    if (hit) hit.count++;
    else b.errors.push({ fingerprint: error.fingerprint, kind: error.kind, name: error.name, message: normalizeMessage(error.message).slice(0, 200), count: 1 });
  }

  /**
   * Keeps rollups at least this long: the coordinator of this client calls it with its `statsRetentionMs`, so the
   * hourly delete here never removes what the leader was told to keep (`rebound worker --stats-retention 90d`
   * kept 31 days before, as every process's recorder deleted at its own default).
   */
  keepAtLeast(ms: number): void {
    this.retentionMs = Math.max(this.retentionMs, ms);
  }

  /** Adds what was recorded since the last flush to the stored rollups. */
  flush(): Promise<void> {
    const batch: StatsBucket[] = [...this.pending.values()].map((b) => ({ ...b, latency: [...b.latency.values()] }));
    this.pending = new Map();
    const now = this.deps.now();
    const prune = now >= this.nextPruneAt;
    if (batch.length === 0 && !prune) return this.flushing;
    if (prune) this.nextPruneAt = now + 3600_000;
    this.flushing = this.flushing
      .then(() => this.deps.store.visibility.addStats(batch))
      .then(async () => {
        if (prune) await this.deps.store.visibility.pruneStats(now - this.retentionMs);
      })
      .catch((error) => this.deps.events.emit('worker:error', { workerId: '-', error, during: 'stats flush' }));
    return this.flushing;
  }

  async close(): Promise<void> {
    for (const off of this.off) off();
    clearInterval(this.timer);
    await this.flush();
  }
}

export interface Percentiles {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface TypeStats {
  type: string;
  enqueued: number;
  started: number;
  completed: number;
  retried: number;
  dead: number;
  /** Workflows that failed for good and were undone (job state `compensated`). */
  compensated: number;
  /** completed / (completed + dead + compensated); null when none of them happened. */
  success_rate: number | null;
  run_ms: Percentiles;
  pickup_ms: Percentiles;
}

export interface Stats {
  window: string;
  from: string;
  to: string;
  /** Minutes per point of `throughput`. */
  step_minutes: number;
  throughput: { at: string; completed: number; retried: number; dead: number }[];
  totals: Omit<TypeStats, 'type'>;
  by_type: TypeStats[];
  errors: { type: string; fingerprint: string; kind: string; name: string; message: string; count: number }[];
}

const WINDOW = /^(\d+)(m|h|d)$/;

/** '5m', '1h', '24h', '7d' → minutes. */
export function parseWindow(window: string): number {
  const m = WINDOW.exec(window);
  const minutes = m ? Number(m[1]) * { m: 1, h: 60, d: 1440 }[m[2] as 'm' | 'h' | 'd'] : NaN;
  if (!(minutes >= 1 && minutes <= 31 * 1440)) {
    throw new ValidationError('window', `"${window}" must be a number with m, h or d (5m, 1h, 24h), at most 31d`);
  }
  return minutes;
}

export function percentiles(hist: { bucket: number; count: number }[]): Percentiles {
  const sorted = [...hist].sort((a, b) => a.bucket - b.bucket);
  const count = sorted.reduce((n, h) => n + h.count, 0);
  const at = (p: number) => {
    if (count === 0) return null;
    const rank = Math.max(1, Math.ceil(p * count));
    let seen = 0;
    for (const h of sorted) {
      seen += h.count;
      if (seen >= rank) return Math.round(bucketValue(h.bucket) * 10) / 10;
    }
    return null;
  };
  return { count, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export async function computeStats(store: Store, opts: { window?: string; now: number; type?: string }): Promise<Stats> {
  const window = opts.window ?? '1h';
  const minutes = parseWindow(window);
  const toMinute = Math.floor(opts.now / MINUTE) * MINUTE;
  const fromMinute = toMinute - (minutes - 1) * MINUTE;
  const rows = await store.visibility.readStats({ fromMinute, toMinute, type: opts.type });
  return summarize(rows, { window, fromMinute, toMinute, minutes });
}

export function summarize(rows: StatsRows, w: { window: string; fromMinute: number; toMinute: number; minutes: number }): Stats {
  const step = Math.max(1, Math.ceil(w.minutes / 60));
  const points = new Map<number, { completed: number; retried: number; dead: number }>();
  for (let m = w.fromMinute; m <= w.toMinute; m += step * MINUTE) points.set(m, { completed: 0, retried: 0, dead: 0 });
  const types = new Map<string, Record<string, number>>();
  for (const r of rows.outcomes) {
    const t = types.get(r.type) ?? {};
    t[r.outcome] = (t[r.outcome] ?? 0) + r.count;
    types.set(r.type, t);
    const slot = w.fromMinute + Math.floor((r.minute - w.fromMinute) / (step * MINUTE)) * step * MINUTE;
    const p = points.get(slot);
    if (p && (r.outcome === 'completed' || r.outcome === 'retried' || r.outcome === 'dead')) p[r.outcome] += r.count;
  }
  const typeStats = (type: string | null): Omit<TypeStats, 'type'> => {
    const o: Record<string, number> = {};
    for (const [t, c] of types) if (type == null || t === type) for (const [k, n] of Object.entries(c)) o[k] = (o[k] ?? 0) + n;
    const lat = (kind: string) => rows.latency.filter((l) => l.kind === kind && (type == null || l.type === type));
    const completed = o.completed ?? 0;
    const dead = o.dead ?? 0;
    const compensated = o.compensated ?? 0;
    const finished = completed + dead + compensated;
    return {
      enqueued: o.enqueued ?? 0,
      started: o.started ?? 0,
      completed,
      retried: o.retried ?? 0,
      dead,
      compensated,
      success_rate: finished === 0 ? null : Math.round((completed / finished) * 10_000) / 10_000,
      run_ms: percentiles(mergeBuckets(lat('run'))),
      pickup_ms: percentiles(mergeBuckets(lat('pickup'))),
    };
  };
  return {
    window: w.window,
    from: new Date(w.fromMinute).toISOString(),
    to: new Date(w.toMinute + MINUTE).toISOString(),
    step_minutes: step,
    throughput: [...points].map(([m, p]) => ({ at: new Date(m).toISOString(), ...p })),
    totals: typeStats(null),
    by_type: [...new Set([...types.keys(), ...rows.latency.map((l) => l.type)])].sort().map((t) => ({ type: t, ...typeStats(t) })),
    errors: [...rows.errors].sort((a, b) => b.count - a.count).slice(0, 50),
  };
}

function mergeBuckets(rows: { bucket: number; count: number }[]) {
  const m = new Map<number, number>();
  for (const r of rows) m.set(r.bucket, (m.get(r.bucket) ?? 0) + r.count);
  return [...m].map(([bucket, count]) => ({ bucket, count }));
}
