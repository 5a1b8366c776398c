/**
 * How many claimed jobs a worker holds beyond the ones it runs: enough for
 * two claim round trips, and at least HORIZON_MS, of work at the pace jobs
 * start now; at most one batch.
 * Fast jobs get a deep local queue, so the next batch arrives before this one
 * runs out; slow jobs get almost none, so claimed jobs do not sit waiting
 * here while another worker could run them.
 */
const ALPHA = 0.3;
/** Fewer, larger claims cost the store less per job (SQLite claims are quick but each commit has a cost of its own). */
const HORIZON_MS = 20;

export class Pace {
  /** Jobs started per millisecond, smoothed; null until the first claim returns. */
  private rate: number | null = null;
  /** Milliseconds per claim round trip, smoothed. */
  private latency = 0;
  private startedSince = 0;
  private since: number;

  constructor(
    private readonly now: () => number,
    private readonly max: number,
    private readonly initial: number,
  ) {
    this.since = now();
  }

  jobStarted(): void {
    this.startedSince++;
  }

  claimed(latencyMs: number): void {
    const now = this.now();
    const elapsed = Math.max(1, now - this.since);
    const sample = this.startedSince / elapsed;
    this.rate = this.rate == null ? sample : this.rate + ALPHA * (sample - this.rate);
    this.latency = this.latency === 0 ? latencyMs : this.latency + ALPHA * (latencyMs - this.latency);
    this.startedSince = 0;
    this.since = now;
  }

  prefetch(): number {
    if (this.rate == null) return this.initial;
    return Math.min(this.max, Math.ceil(this.rate * Math.max(HORIZON_MS, 2 * this.latency)));
  }
}
