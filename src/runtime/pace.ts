/**
 * How many claimed jobs a worker holds beyond the ones it runs: enough for
 * two claim round trips, and at least HORIZON_MS, of work at the pace jobs
 * start now; at most `max` (the worker gives two batches: one running down
 * while the next full claim is on its way).
 * Fast jobs get a deep local queue, so the next batch arrives before this one
 * runs out; slow jobs get almost none, so claimed jobs do not sit waiting
 * here while another worker could run them.
 */
const ALPHA = 0.3;
/** Fewer, larger claims cost the store less per job (SQLite claims are quick but each commit has a cost of its own). */
const HORIZON_MS = 20;

export class Pace {
  /** Jobs started per millisecond, smoothed; null until jobs have started between two claims. */
  private rate: number | null = null;
  /** Milliseconds per claim round trip, smoothed. */
  private latency = 0;
  private startedSince = 0;
  private since: number;
  /** Since the last claim returned, a slot was free with nothing buffered to run. */
  private starved = false;

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

  /** A slot is free and the local queue is empty: the jobs started since the last claim were all there were. */
  ranDry(): void {
    this.starved = true;
  }

  /** A claim came back after `latencyMs`; `full` when it got every job it asked for (the store had more). */
  claimed(latencyMs: number, full: boolean): void {
    const now = this.now();
    this.latency = this.latency === 0 ? latencyMs : this.latency + ALPHA * (latencyMs - this.latency);
    const elapsed = Math.max(1, now - this.since);
    const sample = this.startedSince / elapsed;
    const starved = this.starved;
    this.startedSince = 0;
    this.since = now;
    this.starved = false;
    // Nothing started yet (the first claim's return): no pace to measure, keep the initial prefetch.
    if (this.rate == null && sample === 0) return;
    if (starved && full) {
      // Slots stood empty while the store had more: the sample is how fast jobs came, not how fast they
      // could start. Grow the estimate at least twofold per claim (a slow start) instead of averaging.
      this.rate = Math.max(sample, 2 * (this.rate ?? sample));
    } else {
      this.rate = this.rate == null ? sample : this.rate + ALPHA * (sample - this.rate);
    }
  }

  prefetch(): number {
    if (this.rate == null) return this.initial;
    return Math.min(this.max, Math.ceil(this.rate * Math.max(HORIZON_MS, 2 * this.latency)));
  }
}
