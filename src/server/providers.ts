/**
 * What the server shows or does through other capabilities (breakers, schedules,
 * stats, metrics, audit, workflows, the supervisor). Each is optional: the
 * command that starts the server passes those that exist, and a route whose
 * provider is missing answers 501 `not_implemented`. The server never imports
 * those capabilities itself.
 */
import type { Job, JobEvent, Json } from '../job.ts';

export type BreakerAction = 'open' | 'close' | 'reset';
export type ScheduleAction = 'pause' | 'resume';

export interface OperatorProviders {
  breakers?: {
    list(): Promise<unknown[]>;
    force(name: string, action: BreakerAction, actor: string): Promise<unknown>;
  };
  schedules?: {
    list(): Promise<unknown[]>;
    change(name: string, action: ScheduleAction, actor: string): Promise<unknown>;
    /** Adds a schedule, or changes the one of that name. */
    put(name: string, options: Record<string, unknown>, actor: string): Promise<unknown>;
    remove(name: string, actor: string): Promise<void>;
  };
  /** Queue depth, lag and drain time; the server has a fallback built on job counts. */
  queues?: () => Promise<unknown[]>;
  /** Extra statistics merged into GET /api/stats. */
  stats?: () => Promise<Record<string, unknown>>;
  /** Prometheus text exposition. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  audit?: {
    verify(): Promise<unknown>;
    /** The newest entries, newest first; `operatorOnly` leaves out job submissions. */
    recent(limit: number, opts?: { operatorOnly?: boolean }): Promise<unknown[]>;
  };
  /** Worker processes (the supervisor); the server falls back to its in-process workers. */
  workers?: () => Promise<unknown> | unknown;
  /** A workflow's state machine and steps, when the job is a workflow. */
  workflow?: (job: Job) => Promise<Json | null>;
  /** Delivers a signal and records it as an operator action by `actor`. */
  signal?: (jobId: string, name: string, payload: unknown, actor: string) => Promise<unknown>;
  /** Masks sensitive payload fields for callers who may not see them. Default: nothing is masked. */
  mask?: (type: string, payload: Json) => Json;
  /** Whether this server holds the type's definition (its `redact` paths); viewers see nothing of a job whose type it does not. */
  hasDefinition?: (type: string) => boolean;
  traceId?: (job: Job, history: JobEvent[]) => string | null;
}
