/**
 * The library's front door: `createRebound()` opens a store, applies its
 * migrations, and gives enqueueing, inspection, operator actions and workers.
 */
import { pino } from 'pino';
import { toDefinitions, type JobDefinition, type JobOptions, type Logger } from './define.ts';
import { ConfigError, IdempotencyConflictError, InvalidStateError, JobNotFoundError, ValidationError } from './errors.ts';
import { Batcher } from './engine/batcher.ts';
import { buildNewJob, type EnqueueOptions } from './engine/enqueue-input.ts';
import { jobHistory } from './engine/history.ts';
import { ReboundEmitter } from './events.ts';
import type { Attempt, Job, JobEvent, JobFilter, JobState, Json, NewJob } from './job.ts';
import { openStore, resolveStoreUrl } from './store/open.ts';
import type { InsertedJob, Selection, StateCounts, Store } from './store/store.ts';
import { Worker, type WorkOptions } from './runtime/worker.ts';
import type { WorkerPlugin } from './runtime/plugin.ts';

export interface ReboundOptions {
  /** A store URL (`sqlite:PATH`, `postgres://…`) or a store. Default: REBOUND_STORE, else sqlite:.rebound/rebound.db */
  store?: string | Store;
  jobs?: JobDefinition[] | Record<string, JobOptions | JobDefinition>;
  logger?: Logger;
  /** Epoch milliseconds; inject a clock in tests. */
  now?: () => number;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
}

export interface EnqueueResult {
  id: string;
  state: JobState;
  deduplicated: boolean;
  /** The stored result, when a deduplicated job already completed. */
  result?: Json | null;
  job: Job;
}

export interface JobDetails {
  job: Job;
  history: JobEvent[];
  attempts: Attempt[];
}

export interface EnqueueItem {
  type: string;
  payload: unknown;
  opts?: EnqueueOptions;
}

export async function createRebound(options: ReboundOptions = {}): Promise<Rebound> {
  const store = typeof options.store === 'object' ? options.store : openStore(resolveStoreUrl(options.store));
  if (options.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw new ConfigError(`cannot prepare the store: ${(err as Error).message}`);
    }
  }
  return new Rebound(store, options);
}

export class Rebound {
  readonly events = new ReboundEmitter();
  readonly logger: Logger;
  readonly now: () => number;
  private readonly defs = new Map<string, JobDefinition>();
  private readonly workers = new Set<Worker>();
  private readonly plugins: WorkerPlugin[] = [];
  private readonly inserter: Batcher<NewJob, InsertedJob>;

  constructor(
    readonly store: Store,
    options: ReboundOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? defaultLogger();
    if (options.jobs) for (const d of toDefinitions(options.jobs)) this.define(d);
    this.inserter = new Batcher((jobs) => this.store.insertJobs(jobs, this.now()), { maxBatch: 500, maxInFlight: 4 });
  }

  /** Adds (or replaces) a job definition. */
  define(def: JobDefinition): this {
    this.defs.set(def.type, def);
    return this;
  }

  /** Registers a worker plugin (see runtime/plugin.ts); workers started afterwards use it. */
  use(plugin: WorkerPlugin): this {
    this.plugins.push(plugin);
    return this;
  }

  get definitions(): ReadonlyMap<string, JobDefinition> {
    return this.defs;
  }

  /**
   * Enqueues one job. With an idempotency key, the same key and payload return
   * the existing job (`deduplicated: true`); a different payload is refused.
   */
  async enqueue(type: string, payload: unknown, opts: EnqueueOptions = {}): Promise<EnqueueResult> {
    const job = buildNewJob(type, payload, opts, this.defs.get(type), this.now());
    // Inside a caller's transaction the insert must use the caller's client, so it cannot be batched.
    const inserted = opts?.tx ? (await this.store.insertJobs([job], this.now(), opts.tx))[0] : await this.inserter.add(job);
    return this.settle(job, inserted);
  }

  /** Enqueues many jobs in one round trip. All are validated before any is stored. */
  async enqueueMany(items: EnqueueItem[], opts: { tx?: unknown } = {}): Promise<EnqueueResult[]> {
    if (!Array.isArray(items)) throw new ValidationError('items', 'must be an array of { type, payload, opts }');
    const now = this.now();
    const jobs = items.map((item, i) => {
      try {
        return buildNewJob(item?.type, item?.payload, item?.opts, this.defs.get(item?.type), now);
      } catch (err) {
        if (err instanceof ValidationError) throw new ValidationError(`items[${i}].${err.field}`, err.message.slice(err.field.length + 2));
        throw err;
      }
    });
    const inserted = await this.store.insertJobs(jobs, now, opts.tx);
    return inserted.map((r, i) => this.settle(jobs[i], r));
  }

  private settle(job: NewJob, inserted: InsertedJob): EnqueueResult {
    if (!inserted.inserted && inserted.payloadHash !== job.payloadHash) {
      throw new IdempotencyConflictError(job.idempotencyKey!, inserted.job.id);
    }
    const deduplicated = !inserted.inserted;
    this.events.emit('job:enqueued', { job: inserted.job, deduplicated });
    return {
      id: inserted.job.id,
      state: inserted.job.state,
      deduplicated,
      ...(deduplicated && inserted.job.state === 'completed' ? { result: inserted.job.result } : {}),
      job: inserted.job,
    };
  }

  async getJob(id: string): Promise<Job | null> {
    return this.store.getJob(String(id));
  }

  /** A job with its whole history and its attempts. */
  async inspect(id: string): Promise<JobDetails> {
    const job = await this.store.getJob(String(id));
    if (!job) throw new JobNotFoundError(String(id));
    return { job, ...jobHistory(job, await this.store.getEvents(job.id)) };
  }

  listJobs(filter: JobFilter = {}): Promise<Job[]> {
    return this.store.listJobs(filter);
  }

  countJobs(filter: { state?: JobState; type?: string; queue?: string } = {}): Promise<number> {
    return this.store.countJobs(filter);
  }

  countByState(): Promise<StateCounts> {
    return this.store.countByState();
  }

  listDead(filter: { type?: string; fingerprint?: string; limit?: number } = {}): Promise<Job[]> {
    return this.store.listJobs({ ...filter, state: 'dead' });
  }

  /** Sends dead jobs back to the queue with a fresh attempt budget. */
  async redrive(sel: Selection, opts: { actor?: string } = {}): Promise<string[]> {
    checkSelection(sel);
    const actor = opts.actor ?? 'library';
    const ids = await this.store.redriveDead(sel, actor, this.now());
    if (ids.length) this.events.emit('job:redriven', { jobIds: ids, actor });
    this.events.emit('operator:action', { actor, action: 'dlq.redrive', target: describeSelection(sel), details: { count: ids.length } });
    return ids;
  }

  /** Deletes dead jobs and their history. */
  async purge(sel: Selection, opts: { actor?: string } = {}): Promise<number> {
    checkSelection(sel);
    const actor = opts.actor ?? 'library';
    const count = await this.store.purgeDead(sel);
    this.events.emit('job:purged', { count, actor });
    this.events.emit('operator:action', { actor, action: 'dlq.purge', target: describeSelection(sel), details: { count } });
    return count;
  }

  /** Cancels a job that has not finished; a running job's executor loses its lease. */
  async cancel(id: string, opts: { actor?: string } = {}): Promise<Job> {
    const actor = opts.actor ?? 'library';
    const job = await this.store.cancelJob(String(id), actor, this.now());
    if (job) {
      this.events.emit('job:cancelled', { job, actor });
      this.events.emit('operator:action', { actor, action: 'job.cancel', target: `job:${job.id}` });
      return job;
    }
    const existing = await this.store.getJob(String(id));
    if (!existing) throw new JobNotFoundError(String(id));
    throw new InvalidStateError(`job ${id} is ${existing.state}; only scheduled, available or running jobs can be cancelled`);
  }

  /** Starts a worker on this client's job definitions. */
  work(options: WorkOptions = {}): Worker {
    if (this.defs.size === 0) throw new ConfigError('no job definitions: pass `jobs` to createRebound() or call define()');
    const worker = new Worker(
      { store: this.store, defs: this.defs, events: this.events, logger: this.logger, now: this.now, plugins: this.plugins },
      options,
    );
    this.workers.add(worker);
    void worker.done.then(() => this.workers.delete(worker));
    void worker.start().catch((error) => {
      this.events.emit('worker:error', { workerId: worker.id, error, during: 'start' });
      void worker.stop();
    });
    return worker;
  }

  /** Stops every worker gracefully, then closes the store. */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.inserter.drain();
    await this.store.close();
  }
}

function describeSelection(sel: Selection): string {
  if (sel.all) return 'dlq:all';
  return [sel.ids?.length ? `ids:${sel.ids.join(',')}` : '', sel.type ? `type:${sel.type}` : '', sel.fingerprint ? `fingerprint:${sel.fingerprint}` : '']
    .filter(Boolean)
    .join(' ');
}

function checkSelection(sel: Selection) {
  if (!sel || typeof sel !== 'object') throw new ValidationError('selection', 'give ids, type, fingerprint or all: true');
  const given = [sel.ids?.length, sel.type, sel.fingerprint, sel.all].filter(Boolean).length;
  if (given === 0) throw new ValidationError('selection', 'give ids, type, fingerprint or all: true; an empty selection is refused');
}

export function defaultLogger(): Logger {
  const level = process.env.REBOUND_LOG_LEVEL ?? 'info';
  const pretty = process.stdout.isTTY && process.env.REBOUND_LOG_FORMAT !== 'json';
  // Logs go to stderr, so a command's --json output on stdout stays clean.
  const logger = pretty
    ? pino({ level, transport: { target: 'pino-pretty', options: { destination: 2 } } })
    : pino({ level }, pino.destination(2));
  return logger as unknown as Logger;
}
