/**
 * The `ctx` a handler receives: its job, its abort signal, its lease and its
 * once-ledger. It is made for every attempt, so it is a class (no closures
 * per job), and the costly parts, the abort signal and the logger, are made
 * only when the handler asks for them.
 */
import type { BreakerGuard, JobContext, JobDefinition, Logger, OnceInfo } from '../define.ts';
import { storable } from '../config/options.ts';
import { storedJson } from '../engine/stored-json.ts';
import { ConfigError, ValidationError } from '../errors.ts';
import type { Job, Json } from '../job.ts';
import type { Store } from '../store/store.ts';
import type { Abort } from './abort.ts';

/** What the context asks of the worker running the attempt. */
export interface ContextWorker {
  /** Makes the handler's logger (called on first use). */
  jobLogger(job: Job): Logger;
  /** Renews the job's lease now. */
  heartbeat(job: Job, def: JobDefinition): Promise<void>;
}

export interface ContextDeps {
  job: Job;
  def: JobDefinition;
  abort: Abort;
  store: Store;
  now: () => number;
  worker: ContextWorker;
}

export class JobRunContext implements JobContext {
  readonly jobId: string;
  readonly type: string;
  readonly queue: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly parentId: string | null;
  readonly job: Job;
  readonly fencingToken: number;
  private madeLogger: Logger | null = null;

  constructor(private readonly deps: ContextDeps) {
    const job = deps.job;
    this.job = job;
    this.jobId = job.id;
    this.type = job.type;
    this.queue = job.queue;
    this.attempt = job.attempt;
    this.maxAttempts = job.maxAttempts;
    this.parentId = job.parentId;
    this.fencingToken = job.leaseToken;
  }

  get signal(): AbortSignal {
    return this.deps.abort.signal;
  }

  get logger(): Logger {
    return (this.madeLogger ??= this.deps.worker.jobLogger(this.job));
  }

  set logger(logger: Logger) {
    this.madeLogger = logger;
  }

  heartbeat(): Promise<void> {
    return this.deps.worker.heartbeat(this.job, this.deps.def);
  }

  // Replaced by the breaker plugin that every Rebound client installs (runtime/breakers.ts).
  breaker(_name: string): BreakerGuard {
    throw new ConfigError('ctx.breaker needs a worker started by a Rebound client');
  }

  async once<T extends Json | void>(key: string, fn: (info: OnceInfo) => Promise<T> | T): Promise<T> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 255 || !storable(key)) {
      throw new ValidationError('once.key', 'must be a non-empty string of at most 255 characters, without U+0000 or unpaired UTF-16 surrogates');
    }
    const { store, job, now } = this.deps;
    const stored = await store.getOnce(job.id, key);
    if (stored) return stored.value as T;
    const value = await fn({ idempotencyKey: `rebound:${job.id}:${key}` });
    const json = storedJson(value, `the value of once("${key}")`);
    // If another executor recorded first, its result is the one that counts.
    return (await store.putOnce(job.id, key, json, now())) as T;
  }
}
