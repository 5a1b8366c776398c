/**
 * Group commit: calls made while a flush is in flight (or in the same turn
 * of the event loop) travel together in the next flush, one statement for
 * many callers. Each caller gets its own result or the batch's error.
 */
export class Batcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly flushFn: (items: I[]) => Promise<O[]>,
    private readonly opts: { maxBatch: number; maxInFlight: number; onIdle?: () => void },
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Like add(), for a caller that waits for nothing: the flush function settles the item itself (and must not
   * throw). No promise is made for the item, and nothing but the item is held until its flush.
   */
  send(item: I): void {
    this.pending.push({ item, resolve: ignore, reject: ignore });
    this.schedule();
  }

  /** Resolves once nothing is pending or in flight. */
  async drain(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  private schedule() {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush() {
    if (this.pending.length === 0 || this.inFlight >= this.opts.maxInFlight) return this.settleIdle();
    const batch = this.pending.splice(0, this.opts.maxBatch);
    this.inFlight++;
    try {
      const results = await this.flushFn(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      this.inFlight--;
    }
    if (this.pending.length) this.schedule();
    else this.settleIdle();
  }

  private settleIdle() {
    if (this.pending.length || this.inFlight) return;
    for (const r of this.idle.splice(0)) r();
    this.opts.onIdle?.();
  }
}

/** One flush per key at a time; what is asked meanwhile goes in the next (limits' and breakers' writes and reads). */
export const ONE_FLUSH_AT_A_TIME = { maxBatch: 1000, maxInFlight: 1 };

/**
 * A Batcher for each key (a breaker, a limit's bucket...): calls for one key travel together, keys do not wait
 * for each other. A key's Batcher is dropped once idle, so keys made from payloads (per tenant) do not pile up.
 */
export class KeyedBatcher<I, O> {
  private readonly byKey = new Map<string, Batcher<I, O>>();

  constructor(
    private readonly flushFn: (key: string, items: I[]) => Promise<O[]>,
    private readonly opts: { maxBatch: number; maxInFlight: number },
  ) {}

  add(key: string, item: I): Promise<O> {
    let batcher = this.byKey.get(key);
    if (!batcher) {
      const made: Batcher<I, O> = new Batcher((items) => this.flushFn(key, items), {
        ...this.opts,
        onIdle: () => {
          if (this.byKey.get(key) === made) this.byKey.delete(key);
        },
      });
      this.byKey.set(key, (batcher = made));
    }
    return batcher.add(item);
  }

  /** Resolves once nothing is pending or in flight for any key (including what is added meanwhile). */
  async drain(): Promise<void> {
    while (this.byKey.size) await Promise.all([...this.byKey.values()].map((b) => b.drain()));
  }

  /** Keys with calls pending or in flight. */
  get size(): number {
    return this.byKey.size;
  }
}

const ignore = () => {};
