/**
 * The one place the engine announces what happened to a job. Logs, metrics,
 * traces and audit subscribe here; the engine never imports them.
 */
import type { DeadReason, ErrorInfo, Job } from './job.ts';

export interface ReboundEvents {
  /** `batched`: part of an `enqueueMany` call or of a group commit shared by several `enqueue` calls, which also emit one `jobs:submitted` for their jobs. */
  'job:enqueued': { job: Job; deduplicated: boolean; actor?: string; payloadHash?: string; batched?: boolean };
  /** The jobs of one insert statement (an `enqueueMany` call, or a group commit of several `enqueue` calls) submitted by one actor (the audit trail records them as one entry). */
  'jobs:submitted': { actor?: string; jobs: { job: Job; deduplicated: boolean; payloadHash?: string }[] };
  'job:started': { job: Job; workerId: string };
  /** `state`: 'compensated' when a workflow ended by undoing its steps (docs/workflows.md), else 'completed'. */
  'job:completed': { jobId: string; type: string; job: Job; durationMs: number; workerId: string; state?: 'completed' | 'compensated' };
  'job:retry': { job: Job; error: ErrorInfo; delayMs: number; durationMs: number; workerId: string };
  'job:dead': { job: Job; reason: DeadReason; error: ErrorInfo; durationMs?: number; workerId?: string };
  'job:lease_lost': { job: Job; workerId: string };
  'job:lease_expired': { jobId: string; dead: boolean };
  'job:released': { jobId: string; workerId: string };
  'job:snoozed': { job: Job; runAt: number; reason: string; workerId: string };
  'job:cancelled': { job: Job; actor: string };
  'job:redriven': { jobIds: string[]; actor: string };
  'job:purged': { count: number; actor: string };
  /** Any state-changing operator action (redrive, cancel, purge, breaker forced, schedule changed, token created...). The audit trail records these. */
  'operator:action': { actor: string; action: string; target: string; details?: Record<string, unknown> };
  'worker:error': { workerId: string; error: unknown; during: string };
  /** This process won (leader: true) or lost a leadership; `term` is the fencing token (coordination/leader.ts). */
  'leadership:changed': { lease: string; term: number; holder: string; leader: boolean; reason?: string };
  /** A schedule's fire time produced its job (once across all processes). */
  'schedule:fired': { schedule: string; fireAt: number; jobId: string; term: number };
  /** Retention deleted finished jobs of one state: counts by type. */
  'retention:pruned': { state: string; counts: Record<string, number>; term: number };
  /** A circuit breaker changed state (by itself, or forced by `actor`). */
  'breaker:changed': { name: string; from: string; to: string; reason: string; actor: string; at: number };
  /** Worker processes under a supervisor (runtime/supervisor.ts). */
  'supervisor:process_started': { slot: number; pid: number; restarts: number };
  'supervisor:process_exited': { slot: number; pid: number; code: number | null; signal: string | null; reason: 'crashed' | 'unresponsive' | 'recycled' | 'stopped' | 'drained' };
  'supervisor:process_restarting': { slot: number; delayMs: number; reason: string; crashes: number };
  'supervisor:process_unresponsive': { slot: number; pid: number; silentMs: number };
  'supervisor:process_recycling': { slot: number; pid: number; jobId: string; reason: string };
  'supervisor:crash_loop': { crashes: number; withinMs: number; delayMs: number };
  /** Arrivals outpace completions on a queue: its backlog will not drain (runtime/backpressure.ts). */
  'queue:backlog_growing': { queue: string; depth: number; arrivalsPerSec: number; completionsPerSec: number; message: string };
  /** A job type's retries hit its retry budget: further retries are pushed out (runtime/limits.ts). */
  'retry_budget:exhausted': { type: string; retries: number; attempts: number; deferMs: number };
  /** A dead-letter alert rule fired (runtime/dlq-watcher.ts). */
  'dlq:alert': { rule: string; condition: 'count' | 'growth' | 'oldest_age'; value: number; threshold: number; type: string | null; message: string; at: number };
}

export type EventName = keyof ReboundEvents;

export class ReboundEmitter {
  // Copy on write: on() and the unsubscribe replace a name's array, so emit() walks it without copying it
  // (it runs several times per job), and a listener added or removed during an emit does not change that emit.
  private readonly listeners = new Map<EventName, ((e: never) => void)[]>();

  on<K extends EventName>(name: K, fn: (e: ReboundEvents[K]) => void): () => void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn]);
    return () => {
      const list = this.listeners.get(name) ?? [];
      const i = list.indexOf(fn);
      if (i >= 0) this.listeners.set(name, [...list.slice(0, i), ...list.slice(i + 1)]);
    };
  }

  /** A subscriber's exception must not break the engine: it is reported, not thrown. */
  emit<K extends EventName>(name: K, e: ReboundEvents[K]): void {
    const list = this.listeners.get(name);
    if (list === undefined) return;
    for (const fn of list) {
      try {
        (fn as (e: ReboundEvents[K]) => void)(e);
      } catch (error) {
        if (name !== 'worker:error') this.emit('worker:error', { workerId: '-', error, during: `listener of ${name}` });
      }
    }
  }
}
