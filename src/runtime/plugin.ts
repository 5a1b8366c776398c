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
   * Wraps the insert of new jobs at enqueue (tracing: a producer span whose
   * context is stored on each job). May change the jobs before calling `next()`; must call it once.
   * A large `enqueueMany` calls it once per part of its batch (engine/bulk-enqueue.ts); each part's
   * `next()` resolves once the whole batch is stored.
   */
  wrapEnqueue?(jobs: NewJob[], next: () => Promise<InsertedJob[]>): Promise<InsertedJob[]>;
  /** Called once when a worker stops. */
  stop?(): Promise<void> | void;
}
