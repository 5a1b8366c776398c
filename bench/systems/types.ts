// The one interface every system adapter implements, so every workload can
// drive Rebound, its peers and the raw-SQL ceilings the same way.

export type Payload = Record<string, unknown>;

/** Called by the system for every job it starts, with the job's payload. */
export type Handler = (payload: Payload) => void | Promise<void>;

export interface RunningWorker {
  /** Graceful stop: finish in-flight jobs, flush completions, release claims. */
  stop(): Promise<void>;
}

/** A connection to one system: used by the producer (parent) and by worker children. */
export interface Client {
  /** One awaited single enqueue (the system's ordinary "add a job" call). */
  enqueue(payload: Payload): Promise<void>;
  /** The system's bulk enqueue: all payloads in one call. */
  enqueueMany(payloads: Payload[]): Promise<void>;
  /** Start a worker for job type `noop` that calls `handler` for each job. */
  work(opts: { concurrency: number; handler: Handler }): Promise<RunningWorker>;
  /** Jobs enqueued but not yet durably completed. `expected` = jobs enqueued in this run. */
  outstanding(expected: number): Promise<number>;
  close(): Promise<void>;
}

export interface System {
  /** Stable id used on the command line and in results, e.g. `rebound-pg`. */
  name: string;
  store: 'postgres' | 'sqlite' | 'redis';
  /** `rebound` rows are measured against the best `peer`; `raw` rows are ceilings. */
  role: 'rebound' | 'peer' | 'raw';
  /** Human-readable configuration, printed in results and docs. */
  config: string;
  /** The PostgreSQL schema holding all of this system's tables, if it is on PostgreSQL. */
  pgSchema?: string;
  /** Largest batch handed to enqueueMany when pre-filling a backlog. */
  fillChunk: number;
  /** Why the system cannot run here (missing package, missing src), or undefined. */
  unavailable(): Promise<string | undefined>;
  /** Drop everything this system stored in earlier runs. */
  reset(): Promise<void>;
  /** Connect (and migrate, where the system does that on open). */
  connect(role: 'producer' | 'worker'): Promise<Client>;
}
