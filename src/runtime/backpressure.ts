/**
 * Backpressure and lag. A queue may have a maximum depth (jobs waiting to
 * run): an enqueue beyond it is refused with QueueFullError (the HTTP API
 * answers 429 with Retry-After), or waits for room when the caller passes
 * `waitForRoomMs`. `queueStats()` reports, per queue, depth, the oldest
 * waiting job's age, arrival and completion rates and the projected time to
 * drain, and warns when arrivals outpace completions.
 */
import type { Logger } from '../define.ts';
import { QueueFullError, ValidationError } from '../errors.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Store } from '../store/store.ts';

export interface QueueLimit {
  /** Jobs waiting to run (available or scheduled) beyond which enqueue is refused. */
  maxDepth?: number;
}

export interface QueueStats {
  queue: string;
  /** Jobs waiting to run, due now. */
  depth: number;
  /** Jobs waiting for a later time (delayed, retrying, snoozed). */
  scheduled: number;
  running: number;
  maxDepth: number | null;
  /** How long the oldest due job has waited (ms). */
  oldestWaitingMs: number | null;
  arrivalsPerSec: number;
  completionsPerSec: number;
  failuresPerSec: number;
  /** At the current rates; null when the backlog is not shrinking. */
  projectedDrainMs: number | null;
  /** Set when arrivals outpace completions while jobs wait: the backlog will not drain. */
  warning: string | null;
  windowMs: number;
}

export interface BackpressureDeps {
  store: Store;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
}

/** How long a depth read is trusted before an enqueue checks the store again (ms). */
const DEPTH_TTL_MS = 100;
const WAIT_STEP_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Room taken by an admitted enqueue: `release` it once the insert is over, with how many jobs it stored. */
export interface Admission {
  release(stored: number): void;
}

const UNBOUNDED: Admission = { release() {} };

/**
 * What this client knows of a bounded queue's depth: the last store read, and its own enqueues around it.
 * `reserved` counts jobs admitted whose insert is not over; `stored` counts, since the client started, jobs
 * its inserts stored. A read cannot see an insert that ends after the read began, so the depth is the read
 * plus the jobs stored since it began plus those reserved: at worst an over-count (refusing a little early),
 * never an under-count. Check and reservation happen in one turn of the event loop, so concurrent enqueues
 * of this client cannot both take the last room (before, each kept the depth it read before awaiting).
 */
interface QueueDepth {
  read: { depth: number; at: number; storedBefore: number } | null;
  reading: Promise<void> | null;
  reserved: number;
  stored: number;
}

export class Backpressure {
  private readonly limits = new Map<string, QueueLimit>();
  private readonly depths = new Map<string, QueueDepth>();
  private readonly warnedAt = new Map<string, number>();

  constructor(
    private readonly deps: BackpressureDeps,
    limits: Record<string, QueueLimit> = {},
  ) {
    for (const [queue, limit] of Object.entries(limits)) this.configure(queue, limit);
  }

  /** Sets (or with `{}` clears) a queue's limits. */
  configure(queue: string, limit: QueueLimit): this {
    if (typeof queue !== 'string' || queue.length === 0 || queue.length > 128) throw new ValidationError('queue', 'must be a queue name of 1-128 characters');
    if (limit.maxDepth !== undefined && !(Number.isInteger(limit.maxDepth) && limit.maxDepth > 0)) {
      throw new ValidationError(`queues.${queue}.maxDepth`, 'must be a positive integer');
    }
    this.limits.set(queue, { ...limit });
    return this;
  }

  limit(queue: string): QueueLimit {
    return this.limits.get(queue) ?? {};
  }

  /** Whether any queue has a maximum depth, so that an enqueue may wait for room or be refused. */
  get bounded(): boolean {
    for (const l of this.limits.values()) if (l.maxDepth != null) return true;
    return false;
  }

  /**
   * Admits `count` new jobs into `queue`, or throws QueueFullError; with `waitForRoomMs`, waits up to that
   * long for room first. The caller releases the admission once its insert is over. The depth is read from
   * the store at most every 100 ms (QueueDepth says how this client's own enqueues are counted meanwhile), so
   * only enqueuers in other processes may overshoot, by their own in-flight batches.
   */
  async admit(queue: string, count: number, waitForRoomMs = 0): Promise<Admission> {
    const max = this.limits.get(queue)?.maxDepth;
    if (max == null) return UNBOUNDED;
    const q = this.depths.get(queue) ?? this.depths.set(queue, { read: null, reading: null, reserved: 0, stored: 0 }).get(queue)!;
    const deadline = this.deps.now() + waitForRoomMs;
    for (let fresh = false; ; fresh = true) {
      await this.readDepth(queue, q, fresh);
      // From here to the reservation nothing awaits.
      const depth = q.read!.depth + (q.stored - q.read!.storedBefore) + q.reserved;
      if (depth + count <= max) {
        q.reserved += count;
        let released = false;
        return {
          release: (stored) => {
            if (released) return;
            released = true;
            q.reserved -= count;
            q.stored += stored;
          },
        };
      }
      if (this.deps.now() >= deadline) {
        if (!fresh) continue; // check the store before refusing
        throw new QueueFullError(queue, depth, max, await this.retryAfter(queue, depth + count - max));
      }
      await sleep(Math.min(WAIT_STEP_MS, Math.max(1, deadline - this.deps.now())));
    }
  }

  /** Reads the queue's depth from the store unless a read under 100 ms old will do; concurrent callers share one read. */
  private async readDepth(queue: string, q: QueueDepth, fresh: boolean): Promise<void> {
    const now = this.deps.now();
    if (!fresh && q.read && now - q.read.at < DEPTH_TTL_MS) return;
    if (!q.reading) {
      const storedBefore = q.stored;
      q.reading = this.deps.store.backlog
        .depth(queue)
        .then((depth) => {
          q.read = { depth, at: now, storedBefore };
        })
        .finally(() => {
          q.reading = null;
        });
    }
    await q.reading;
  }

  /** How long until `excess` jobs have left the queue at its recent completion rate (at least 100 ms, default 1 s). */
  private async retryAfter(queue: string, excess: number): Promise<number> {
    const stats = (await this.queueStats({ windowMs: 10_000, warn: false })).find((s) => s.queue === queue);
    const rate = stats ? stats.completionsPerSec + stats.failuresPerSec : 0;
    if (rate <= 0) return 1000;
    return Math.max(100, Math.ceil((excess / rate) * 1000));
  }

  /** Depth, lag and rates per queue over the last `windowMs` (default one minute). */
  async queueStats(opts: { windowMs?: number; warn?: boolean } = {}): Promise<QueueStats[]> {
    const windowMs = opts.windowMs ?? 60_000;
    if (!(Number.isInteger(windowMs) && windowMs >= 1000)) throw new ValidationError('windowMs', 'must be an integer of at least 1000 ms');
    const now = this.deps.now();
    const counts = await this.deps.store.backlog.queueCounts(now, now - windowMs);
    const known = new Set(counts.map((c) => c.queue));
    for (const q of this.limits.keys()) {
      if (!known.has(q)) counts.push({ queue: q, waiting: 0, scheduled: 0, running: 0, oldestDueAt: null, arrived: 0, completed: 0, failed: 0 });
    }
    return counts.map((c) => {
      const seconds = windowMs / 1000;
      const arrivalsPerSec = round(c.arrived / seconds);
      const completionsPerSec = round(c.completed / seconds);
      const failuresPerSec = round(c.failed / seconds);
      const outflow = (c.completed + c.failed) / seconds;
      const net = outflow - c.arrived / seconds;
      const backlog = c.waiting;
      const projectedDrainMs = backlog === 0 ? 0 : net > 0 ? Math.ceil((backlog / net) * 1000) : null;
      const warning =
        backlog > 0 && net <= 0 && c.arrived > 0
          ? `arrivals (${arrivalsPerSec}/s) outpace completions (${round(outflow)}/s): the backlog of ${backlog} will not drain`
          : null;
      const stats: QueueStats = {
        queue: c.queue,
        depth: c.waiting,
        scheduled: c.scheduled,
        running: c.running,
        maxDepth: this.limits.get(c.queue)?.maxDepth ?? null,
        oldestWaitingMs: c.oldestDueAt == null ? null : Math.max(0, now - c.oldestDueAt),
        arrivalsPerSec,
        completionsPerSec,
        failuresPerSec,
        projectedDrainMs,
        warning,
        windowMs,
      };
      if (warning && opts.warn !== false) this.warn(stats, now);
      return stats;
    });
  }

  /** Logs and emits `queue:backlog_growing`, at most once a minute per queue. */
  private warn(stats: QueueStats, now: number) {
    const last = this.warnedAt.get(stats.queue) ?? 0;
    if (now - last < 60_000) return;
    this.warnedAt.set(stats.queue, now);
    this.deps.logger.warn({ queue: stats.queue, depth: stats.depth, arrivals_per_sec: stats.arrivalsPerSec, completions_per_sec: stats.completionsPerSec }, stats.warning!);
    this.deps.events.emit('queue:backlog_growing', { queue: stats.queue, depth: stats.depth, arrivalsPerSec: stats.arrivalsPerSec, completionsPerSec: stats.completionsPerSec, message: stats.warning! });
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
