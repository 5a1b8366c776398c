/**
 * How capabilities hook into workers without the worker importing them.
 * A plugin is registered with `rebound.use(plugin)`; every worker started
 * afterwards consults it. Keep each hook cheap: it runs on the hot path.
 */
import type { JobContext, JobDefinition } from '../define.ts';
import type { Job, NewJob } from '../job.ts';
import type { InsertedJob } from '../store/store.ts';

export interface ClaimGate {
  /** Types that must not be claimed now (an open breaker, an empty rate-limit bucket). */
  blockedTypes?: string[];
}

export interface WorkerPlugin {
  name: string;
  /** Asked before every claim. */
  gate?(now: number): Promise<ClaimGate> | ClaimGate;
  /** Adds fields to the handler's ctx (for example a breaker or a fencing token). */
  extendContext?(ctx: JobContext, job: Job, def: JobDefinition): void;
  /** Wraps the handler run: tracing, workflow replay, breaker accounting. Must call `next()` at most once. */
  wrap?(next: () => Promise<unknown>, ctx: JobContext, job: Job, def: JobDefinition): Promise<unknown>;
  /**
   * Whether `wrap` has work to do in this attempt (default: it has). One that has none costs the attempt
   * no closure, no promise and no async frame (a plain job used to run inside four wraps that did
   * nothing unless its handler failed).
   */
  wraps?(job: Job, def: JobDefinition): boolean;
  /**
   * Where the plugin does not wrap the attempt: maps the error its handler threw, at the plugin's place
   * in the nesting (synchronous; returns the error to throw on). A plugin that wraps maps it in `wrap`.
   */
  mapError?(err: unknown, job: Job, def: JobDefinition): unknown;
  /**
   * Asked when a failed attempt is about to be retried, after `delayMs` (its backoff, or the error's own
   * `retryAfterMs`): returns the delay to use, no shorter (a retry budget pushes retries out). Asked in the
   * worker, where the retry is decided: an attempt that timed out is decided there while its handler may run on.
   */
  retryDelay?(job: Job, def: JobDefinition, delayMs: number, now: number): number;
  /**
   * Wraps the insert of new jobs at enqueue (tracing: a producer span whose
   * context is stored on each job). May change the jobs before calling `next()`; must call it once.
   * A large `enqueueMany` calls it once per part of its batch (engine/bulk-enqueue.ts); each part's
   * `next()` resolves once the whole batch is stored.
   */
  wrapEnqueue?(jobs: NewJob[], next: () => Promise<InsertedJob[]>): Promise<InsertedJob[]>;
  /** Called once when a worker stops. */
  stop?(): Promise<void> | void;
}

/**
 * The attempt's run: the handler inside the `wrap` of each plugin that takes part (`wraps`), the first
 * registered outermost; between them, the `mapError` of the plugins that do not wrap, innermost first.
 * Null when no plugin wraps: the worker then runs the handler itself and maps a thrown error with
 * `mapHandlerError`, which is the same nesting without a closure per layer.
 */
export function wrapAttempt(plugins: WorkerPlugin[], ctx: JobContext, job: Job, def: JobDefinition): (() => Promise<unknown>) | null {
  let run: (() => Promise<unknown>) | null = null;
  // plugins[i + 1, mapTo) lie between this wrap and the one inside it (or the handler).
  let mapTo = plugins.length;
  for (let i = plugins.length - 1; i >= 0; i--) {
    const p = plugins[i];
    if (!p.wrap || p.wraps?.(job, def) === false) continue;
    const inner = mapped(run ?? (async () => def.handler(job.payload, ctx)), plugins, i + 1, mapTo, job, def);
    run = () => p.wrap!(inner, ctx, job, def);
    mapTo = i;
  }
  return run && mapped(run, plugins, 0, mapTo, job, def);
}

/** The handler's error as the plugins map it when none of them wraps the attempt. */
export function mapHandlerError(plugins: WorkerPlugin[], err: unknown, job: Job, def: JobDefinition): unknown {
  return mapErrors(plugins, 0, plugins.length, err, job, def);
}

function mapped(run: () => Promise<unknown>, plugins: WorkerPlugin[], from: number, to: number, job: Job, def: JobDefinition) {
  for (let i = from; i < to; i++) {
    if (plugins[i].mapError) return () => run().catch((err) => Promise.reject(mapErrors(plugins, from, to, err, job, def)));
  }
  return run;
}

/** Applies the `mapError` of plugins[from, to), innermost (last registered) first. */
function mapErrors(plugins: WorkerPlugin[], from: number, to: number, err: unknown, job: Job, def: JobDefinition): unknown {
  for (let i = to - 1; i >= from; i--) {
    const map = plugins[i].mapError;
    if (map) err = map(err, job, def);
  }
  return err;
}
