/**
 * A job attempt's abort: a reason once it is aborted (timeout, lost lease,
 * cancel, shutdown), and an AbortSignal made only if the handler or a plugin
 * asks for it. Most handlers never look at their signal, and an
 * AbortController per job is a measurable share of a no-op job's cost.
 */
export class Abort {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | null = null;
  private rejectRun: ((reason: unknown) => void) | null = null;
  /** The work given to race(), which may run on after an abort if it ignores its signal. */
  work: Promise<unknown> | null = null;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.rejectRun?.(reason);
  }

  /** Settles as `work` does, or rejects with the reason as soon as this is aborted, whichever comes first. */
  race<T>(work: () => Promise<T>): Promise<T> {
    if (this.aborted) return Promise.reject(this.reason);
    return new Promise<T>((resolve, reject) => {
      this.rejectRun = reject;
      const running = work();
      this.work = running;
      running.then(resolve, reject);
    });
  }
}
