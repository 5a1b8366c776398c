/**
 * The library's front door: `createRebound()` opens a store, applies its
 * migrations, and gives enqueueing, inspection, operator actions and workers.
 */
import { pino } from 'pino';
import { toDefinitions, type JobDefinition, type JobOptions, type Logger } from './define.ts';
import { ConfigError, IdempotencyConflictError, InvalidStateError, JobNotFoundError, StoreUnavailableError, ValidationError } from './errors.ts';
import { isStoreUnreachable } from './store/unreachable.ts';
import { Batcher } from './engine/batcher.ts';
import { streamJobs } from './engine/bulk-enqueue.ts';
import { buildNewJob, checkBatchKeys, checkManyOptions, checkPayload, OPTION_NAMES, retimeNewJob, type EnqueueManyOptions, type EnqueueOptions } from './engine/enqueue-input.ts';
import { checkReboundOptions } from './config/rebound-options.ts';
import { checkWorkOptions } from './config/work-options.ts';
import { jobHistory } from './engine/history.ts';
import { checkFilter, checkSelectionFields, jobIdOf, shownId } from './engine/job-query.ts';
import { ReboundEmitter, type ReboundEvents } from './events.ts';
import type { Attempt, Job, JobEvent, JobFilter, JobState, Json, NewJob } from './job.ts';
import { openStore, resolveStoreUrl } from './store/open.ts';
import { isKeyConflict } from './store/new-job.ts';
import { storable } from './config/options.ts';
import type { InsertedJob, Selection, StateCounts, Store } from './store/store.ts';
import { Worker, type WorkOptions } from './runtime/worker.ts';
import type { WorkerPlugin } from './runtime/plugin.ts';
import { maskJob, Visibility, type Stats, type VisibilityOptions } from './observability/index.ts';
import { Breakers, checkSharedBreaker } from './runtime/breakers.ts';
import { Backpressure, type Admission, type QueueLimit, type QueueStats } from './runtime/backpressure.ts';
import { Limits } from './runtime/limits.ts';
import { DlqWatcher, type DlqWatcherOptions } from './runtime/dlq-watcher.ts';
import { workflowPlugin } from './workflows/host.ts';
import { sendSignal, workflowDetails, type SignalResult, type WorkflowDetails } from './workflows/client.ts';
import { Coordination } from './coordination/index.ts';
import type { LeadershipStart, LeadershipStop } from './coordination/leader.ts';
import type { HeldLock, LockOptions } from './coordination/locks.ts';

export interface ReboundOptions extends VisibilityOptions {
  /** A store URL (`sqlite:PATH`, `postgres://…`) or a store. Default: REBOUND_STORE, else sqlite:.rebound/rebound.db */
  store?: string | Store;
  jobs?: JobDefinition[] | Record<string, JobOptions | JobDefinition>;
  logger?: Logger;
  /** Epoch milliseconds; inject a clock in tests. */
  now?: () => number;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** Per-queue limits, e.g. `{ default: { maxDepth: 10_000 } }` (runtime/backpressure.ts). */
  queues?: Record<string, QueueLimit>;
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
  /** For a workflow job: its version, status, named state and step history. */
  workflow?: WorkflowDetails;
}

export interface EnqueueItem {
  type: string;
  payload: unknown;
  opts?: EnqueueOptions;
}

export async function createRebound(options: ReboundOptions = {}): Promise<Rebound> {
  checkReboundOptions(options);
  const store = typeof options.store === 'object' ? options.store : await openStore(resolveStoreUrl(options.store));
  if (options.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      const message = `cannot prepare the store: ${(err as Error).message}`;
      throw isStoreUnreachable(err) ? new StoreUnavailableError(`${message}; try again once it answers`, { cause: err }) : new ConfigError(message, { cause: err });
    }
  }
  try {
    return new Rebound(store, options);
  } catch (err) {
    // A definition refused (by defineJob, or a breaker two types declare differently): close what was opened here.
    if (typeof options.store !== 'object') await store.close();
    throw err;
  }
}

export class Rebound {
  readonly events = new ReboundEmitter();
  /** Circuit breakers shared by every process: list, force, reset, guard (runtime/breakers.ts). */
  readonly breakers: Breakers;
  /** Queue depth limits and lag (runtime/backpressure.ts). */
  readonly backpressure: Backpressure;
  /** Rate limits, concurrency limits and retry budgets of job types (runtime/limits.ts). */
  readonly limits: Limits;
  private readonly dlqWatchers = new Set<DlqWatcher>();
  readonly logger: Logger;
  readonly now: () => number;
  private readonly defs = new Map<string, JobDefinition>();
  private readonly workers = new Set<Worker>();
  private readonly plugins: WorkerPlugin[] = [];
  /** Group commit of single enqueues (engine/batcher.ts): one insert statement for the calls made meanwhile. */
  private readonly inserter: Batcher<{ job: NewJob; actor?: string }, { inserted: InsertedJob; grouped: boolean }>;
  /** Metrics, traces, job logs, stats rollups and the audit trail (observability/). */
  readonly visibility: Visibility;

  constructor(
    readonly store: Store,
    options: ReboundOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? defaultLogger();
    if (options.jobs) for (const d of toDefinitions(options.jobs)) this.define(d);
    this.inserter = new Batcher((items) => this.insertGroup(items), { maxBatch: 500, maxInFlight: 4 });
    // First, so its consumer span wraps every other plugin's work on the attempt.
    this.visibility = new Visibility({ store, events: this.events, logger: this.logger, now: this.now, definitions: () => this.defs }, options);
    this.use(this.visibility.plugin);
    this.breakers = new Breakers({ store, events: this.events, now: this.now, logger: this.logger, defs: () => this.defs });
    this.use(this.breakers.plugin());
    this.backpressure = new Backpressure({ store, events: this.events, logger: this.logger, now: this.now }, options.queues);
    this.limits = new Limits({ store, events: this.events, logger: this.logger, now: this.now });
    this.use(this.limits.plugin());
    this.use(workflowPlugin({ store, now: this.now, enqueue: (type, payload, opts) => this.enqueue(type, payload, opts) }));
  }

  /**
   * Adds (or replaces) a job definition; workers started afterwards serve it. A running worker keeps the
   * definitions it started with: its lease and heartbeat period were fixed from them (see work()).
   */
  define(def: JobDefinition): this {
    checkSharedBreaker(def, this.defs.values());
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
    const builtAt = this.now();
    let job = buildNewJob(type, payload, opts, this.defs.get(type), builtAt);
    const admission = await this.backpressure.admit(job.queue, 1, opts?.waitForRoomMs);
    job = retimeNewJob(job, opts, builtAt, this.now());
    let grouped = false;
    let inserted: InsertedJob | undefined;
    try {
      [inserted] = await this.insertWithPlugins([job], async () => {
        // Inside a caller's transaction the insert must use the caller's client, so it cannot be batched.
        if (opts?.tx) return this.store.insertJobs([job], this.now(), opts.tx);
        const r = await this.inserter.add({ job, actor: opts?.actor });
        grouped = r.grouped;
        return [r.inserted];
      });
    } finally {
      admission.release(inserted?.inserted ? 1 : 0);
    }
    return this.settle(job, inserted, opts?.actor, grouped);
  }

  /**
   * One group commit of single enqueues. When several calls share the insert, they also share their
   * submission event (one per actor), as an `enqueueMany` call's jobs do: the audit trail then writes
   * and seals one entry for the statement, not one per job (per-job entries halved this path's throughput).
   */
  private async insertGroup(items: { job: NewJob; actor?: string }[]): Promise<{ inserted: InsertedJob; grouped: boolean }[]> {
    const jobs = items.map((i) => i.job);
    const inserted = await this.store.insertJobs(jobs, this.now());
    const grouped = items.length > 1;
    if (grouped) this.emitSubmitted(jobs, inserted, (i) => items[i].actor);
    return inserted.map((r) => ({ inserted: r, grouped }));
  }

  /**
   * `jobs:submitted` once per actor for jobs stored by one statement, emitted before any conflict throws (its jobs are
   * stored either way): the audit trail records one entry for them. A conflicting key stored nothing.
   */
  private emitSubmitted(jobs: NewJob[], inserted: InsertedJob[], actorOf: (i: number) => string | undefined) {
    const byActor = new Map<string | undefined, ReboundEvents['jobs:submitted']['jobs']>();
    inserted.forEach((r, i) => {
      if (isKeyConflict(jobs[i], r)) return;
      const actor = actorOf(i);
      const list = byActor.get(actor) ?? byActor.set(actor, []).get(actor)!;
      list.push({ job: r.job, deduplicated: !r.inserted, payloadHash: r.payloadHash });
    });
    for (const [actor, list] of byActor) this.events.emit('jobs:submitted', { jobs: list, ...(actor ? { actor } : {}) });
  }

  /**
   * Enqueues many jobs in one statement. Every job is validated before any is stored; an invalid one
   * stores none, nor do two items with one idempotency key and different payloads. A large batch of jobs
   * without keys or ordering goes to the store in parts where it can take them (engine/bulk-enqueue.ts),
   * still all or none. A key already held by a stored job with another payload stores none either:
   * IdempotencyConflictError names the first such item's key and job.
   */
  async enqueueMany(items: EnqueueItem[], opts: EnqueueManyOptions = {}): Promise<EnqueueResult[]> {
    if (!Array.isArray(items)) throw new ValidationError('items', 'must be an array of { type, payload, opts }');
    opts = checkManyOptions(opts);
    const now = this.now();
    const build = (i: number) => this.buildItem(items, i, now);
    const streamed = this.streamable(items, opts) ? this.store.openBulkInsert?.(items.length, now) : null;
    let jobs: NewJob[];
    let inserted: InsertedJob[];
    if (streamed) {
      ({ jobs, inserted } = await streamJobs(await streamed, items.length, build, (part, insert) => this.insertWithPlugins(part, insert)));
    } else {
      // Array.from visits the holes of a sparse array too (map skips them), so each gets its ValidationError.
      jobs = Array.from(items, (_, i) => build(i));
      checkBatchKeys(jobs);
      inserted = await this.admitted(jobs, opts.waitForRoomMs, () => {
        // Run times and the keys' expiry count from when there was room, not from before a wait for it.
        const admittedAt = this.now();
        jobs = jobs.map((job, i) => retimeNewJob(job, items[i]?.opts, now, admittedAt));
        return this.insertWithPlugins(jobs, () => this.store.insertJobs(jobs, admittedAt, opts.tx, { allOrNothing: true }));
      });
    }
    this.emitSubmitted(jobs, inserted, (i) => items[i]?.opts?.actor);
    return inserted.map((r, i) => this.settle(jobs[i], r, items[i]?.opts?.actor, true));
  }

  /** Runs `insert` with room taken in each of the jobs' queues, given back as the insert ends (runtime/backpressure.ts). */
  private async admitted(jobs: NewJob[], waitForRoomMs: number | undefined, insert: () => Promise<InsertedJob[]>): Promise<InsertedJob[]> {
    const perQueue = new Map<string, number>();
    for (const j of jobs) perQueue.set(j.queue, (perQueue.get(j.queue) ?? 0) + 1);
    const admissions = new Map<string, Admission>();
    let inserted: InsertedJob[] | undefined;
    try {
      for (const [queue, n] of perQueue) admissions.set(queue, await this.backpressure.admit(queue, n, waitForRoomMs));
      inserted = await insert();
      return inserted;
    } finally {
      const stored = new Map<string, number>();
      inserted?.forEach((r, i) => r.inserted && stored.set(jobs[i].queue, (stored.get(jobs[i].queue) ?? 0) + 1));
      for (const [queue, a] of admissions) a.release(stored.get(queue) ?? 0);
    }
  }

  /** Item `i` of an `enqueueMany` call as a new job, or a ValidationError naming `items[i]`'s field. */
  private buildItem(items: EnqueueItem[], i: number, now: number): NewJob {
    const item = items[i];
    // An item's options are its `opts`: `{ options: { priority: 5 } }` or `{ priority: 5 }` was taken, and the
    // options silently dropped. Other fields of the caller's own (an item type that extends EnqueueItem) are left be.
    const misplaced = item && typeof item === 'object' ? Object.keys(item).find((k) => k === 'options' || OPTION_NAMES.includes(k)) : undefined;
    if (misplaced) {
      throw new ValidationError(
        `items[${i}].${misplaced}`,
        misplaced === 'options' ? 'an item\'s options are its opts: { type, payload, opts }' : `an option goes in the item's opts: { type, payload, opts: { ${misplaced} } }`,
      );
    }
    try {
      return buildNewJob(item?.type, item?.payload, item?.opts, this.defs.get(item?.type), now);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      // The library names an item's options `options`; in an item they are `opts`.
      const field = err.field.replace(/^options(?=\.|$)/, 'opts');
      throw new ValidationError(`items[${i}].${field}`, err.message.slice(err.field.length + 2));
    }
  }

  /**
   * Whether a batch may go to the store in parts: no caller's transaction, no queue that can be full (its
   * room is counted before the insert), and no item asking for an idempotency or ordering key (those need
   * the insert's answer per job).
   */
  private streamable(items: EnqueueItem[], opts: { tx?: unknown }): boolean {
    if (opts.tx != null || this.backpressure.bounded || !this.store.openBulkInsert) return false;
    for (const item of items) {
      const o = item?.opts;
      if (o != null && (o.idempotencyKey !== undefined || o.orderingKey !== undefined)) return false;
    }
    return true;
  }

  /** Runs the insert inside every plugin's `wrapEnqueue` (tracing stores the producer span's context on each job). */
  private insertWithPlugins(jobs: NewJob[], insert: () => Promise<InsertedJob[]>): Promise<InsertedJob[]> {
    const run = this.plugins.reduceRight<() => Promise<InsertedJob[]>>(
      (next, p) => (p.wrapEnqueue ? () => p.wrapEnqueue!(jobs, next) : next),
      insert,
    );
    return run();
  }

  private settle(job: NewJob, inserted: InsertedJob, actor?: string, batched = false): EnqueueResult {
    if (isKeyConflict(job, inserted)) {
      throw new IdempotencyConflictError(job.idempotencyKey!, inserted.job.id);
    }
    const deduplicated = !inserted.inserted;
    this.events.emit('job:enqueued', {
      job: inserted.job,
      deduplicated,
      payloadHash: inserted.payloadHash,
      ...(actor ? { actor } : {}),
      ...(batched ? { batched } : {}),
    });
    return {
      id: inserted.job.id,
      state: inserted.job.state,
      deduplicated,
      ...(deduplicated && inserted.job.state === 'completed' ? { result: inserted.job.result } : {}),
      job: inserted.job,
    };
  }

  async getJob(id: string): Promise<Job | null> {
    const key = jobIdOf(id);
    return key ? this.store.getJob(key) : null;
  }

  /** A job with its whole history and its attempts. */
  async inspect(id: string, opts: { unmasked?: boolean } = {}): Promise<JobDetails> {
    const key = jobIdOf(id);
    const stored = key ? await this.store.getJob(key) : null;
    if (!stored) throw new JobNotFoundError(shownId(id));
    // Sensitive payload paths (defineJob's `redact`) are masked unless the caller may see them.
    const job = opts.unmasked ? stored : maskJob(this.defs.get(stored.type), stored);
    const workflow = await workflowDetails(this.store, job.id);
    return { job, ...jobHistory(job, await this.store.getEvents(job.id)), ...(workflow && { workflow }) };
  }

  /** A workflow run: its version, status, named state (`state`), what it waits for, and its step history. */
  async workflow(id: string): Promise<WorkflowDetails> {
    const details = await workflowDetails(this.store, String(id));
    if (details) return details;
    if (!(await this.store.getJob(String(id)))) throw new JobNotFoundError(String(id));
    throw new InvalidStateError(`job ${id} is not a workflow run, or has not started yet`);
  }

  /**
   * Sends a signal to a workflow; a workflow waiting for it (`ctx.waitFor(name)`) wakes at once. A job that is
   * not a workflow (NotAWorkflowError) or has finished (InvalidStateError) is refused and nothing is stored.
   */
  async signal(jobId: string, name: string, payload: unknown = null, opts: { actor?: string } = {}): Promise<SignalResult> {
    checkPayload(payload, undefined);
    const actor = actorOf(opts);
    const result = await sendSignal(this.store, this.now(), String(jobId), name, payload, (type) => this.defs.get(type));
    this.events.emit('operator:action', { actor, action: 'workflow.signal', target: `job:${jobId}`, details: { name } });
    return result;
  }

  /** Prometheus text exposition of this client's metrics (observability/metrics.ts). */
  metrics(): Promise<string> {
    return this.visibility.metricsText();
  }

  /** Throughput, success rate, latency percentiles and errors over a window ('5m', '1h', '24h'), from rollups. */
  stats(opts: { window?: string; type?: string } = {}): Promise<Stats> {
    return this.visibility.computeStats(opts);
  }

  async listJobs(filter: JobFilter = {}): Promise<Job[]> {
    return this.store.listJobs(checkFilter(filter));
  }

  async countJobs(filter: { state?: JobState; type?: string; queue?: string } = {}): Promise<number> {
    return this.store.countJobs(checkFilter(filter));
  }

  countByState(): Promise<StateCounts> {
    return this.store.countByState();
  }

  /** Per queue: depth, oldest waiting age, arrival and completion rates, projected drain time, and a warning when the backlog will not drain. */
  queueStats(opts: { windowMs?: number } = {}): Promise<QueueStats[]> {
    return this.backpressure.queueStats(opts);
  }

  /** Starts watching the dead letter queue: alert rules (webhook, log, `dlq:alert`) and scheduled redrive policies (runtime/dlq-watcher.ts). Stopped by close(). */
  watchDlq(opts: DlqWatcherOptions): DlqWatcher {
    const watcher = new DlqWatcher({ store: this.store, events: this.events, logger: this.logger, now: this.now }, opts);
    // Two watchers on one lease would elect one of them: the other's rules and policies would never run.
    if ([...this.dlqWatchers].some((w) => w.lease === watcher.lease)) {
      throw new ValidationError('dlq.lease', `a DLQ watcher of this client already runs under lease "${watcher.lease}"; give this one its own lease`);
    }
    this.dlqWatchers.add(watcher);
    return watcher.start();
  }

  // async: a bad filter rejects the promise rather than throwing, like every other query here.
  async listDead(filter: { type?: string; fingerprint?: string; limit?: number } = {}): Promise<Job[]> {
    return this.store.listJobs(checkFilter({ ...filter, state: 'dead' }));
  }

  /** Sends dead jobs back to the queue with a fresh attempt budget. */
  async redrive(sel: Selection, opts: { actor?: string } = {}): Promise<string[]> {
    checkSelection(sel);
    const actor = actorOf(opts);
    const ids = await this.store.redriveDead(sel, actor, this.now());
    if (ids.length) this.events.emit('job:redriven', { jobIds: ids, actor });
    this.events.emit('operator:action', { actor, action: 'dlq.redrive', target: describeSelection(sel), details: { count: ids.length } });
    return ids;
  }

  /** Deletes dead jobs and their history. */
  async purge(sel: Selection, opts: { actor?: string } = {}): Promise<number> {
    checkSelection(sel);
    const actor = actorOf(opts);
    const count = await this.store.purgeDead(sel);
    this.events.emit('job:purged', { count, actor });
    this.events.emit('operator:action', { actor, action: 'dlq.purge', target: describeSelection(sel), details: { count } });
    return count;
  }

  /**
   * Cancels a job that has not finished, with its unfinished descendants (a workflow's children); a running
   * job's executor loses its lease. Returns the job asked for.
   */
  async cancel(id: string, opts: { actor?: string } = {}): Promise<Job> {
    const actor = actorOf(opts);
    if (!jobIdOf(id)) throw new JobNotFoundError(shownId(id));
    const cancelled = await this.store.cancelJob(jobIdOf(id)!, actor, this.now());
    if (cancelled) {
      const { job, descendants } = cancelled;
      for (const j of [job, ...descendants]) this.events.emit('job:cancelled', { job: j, actor });
      const details = descendants.length ? { descendants: descendants.map((d) => d.id) } : undefined;
      this.events.emit('operator:action', { actor, action: 'job.cancel', target: `job:${job.id}`, details });
      return job;
    }
    const existing = await this.store.getJob(jobIdOf(id)!);
    if (!existing) throw new JobNotFoundError(shownId(id));
    throw new InvalidStateError(`job ${id} is ${existing.state}; only scheduled, available or running jobs can be cancelled`);
  }

  /** Starts a worker on this client's job definitions. */
  work(options: WorkOptions = {}): Worker {
    options = checkWorkOptions(options);
    if (this.defs.size === 0) throw new ConfigError('no job definitions: pass `jobs` to createRebound() or call define()');
    // A copy: a definition replaced later with a shorter lease would otherwise run beside heartbeats paced for the
    // old one, and its jobs' leases would lapse while they ran (a rescue elsewhere would run them twice).
    const worker = new Worker(
      { store: this.store, defs: new Map(this.defs), events: this.events, logger: this.logger, now: this.now, plugins: this.plugins },
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

  private coordinationFacade?: Coordination;

  /** Schedules, the coordinator (election, firing, pruning), leadership and locks (coordination/). */
  get coordination(): Coordination {
    return (this.coordinationFacade ??= new Coordination(this));
  }

  /** Runs `start` when this process becomes the leader and `stop` when it stops being one; starts the coordinator. */
  onLeadership(start: LeadershipStart, stop?: LeadershipStop): () => void {
    return this.coordination.onLeadership(start, stop);
  }

  /** Runs `fn` holding a distributed lock; `lock.token` increases with every acquisition (a fencing token). */
  withLock<T>(name: string, fn: (lock: HeldLock) => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
    return this.coordination.withLock(name, fn, opts);
  }

  /** Stops every worker gracefully, then closes the store. */
  async close(): Promise<void> {
    await Promise.all([...this.dlqWatchers].map((w) => w.stop()));
    await this.coordinationFacade?.stop();
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.breakers.stop();
    await this.inserter.drain();
    await this.visibility.close();
    await this.store.close();
  }
}

/**
 * Who an operator call names for the audit trail and the job's history (default 'library'): checked as an
 * enqueue's `actor` is, since one PostgreSQL could not store failed the call, or the audit batch carrying it.
 */
function actorOf(opts: { actor?: unknown } | undefined): string {
  const actor = opts?.actor;
  if (actor === undefined) return 'library';
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200 || !storable(actor)) {
    throw new ValidationError('opts.actor', 'must be a string of 1-200 characters, without U+0000 or unpaired UTF-16 surrogates');
  }
  return actor;
}

function describeSelection(sel: Selection): string {
  if (sel.all) return 'dlq:all';
  return [sel.ids?.length ? `ids:${sel.ids.join(',')}` : '', sel.type ? `type:${sel.type}` : '', sel.fingerprint ? `fingerprint:${sel.fingerprint}` : '']
    .filter(Boolean)
    .join(' ');
}

function checkSelection(sel: Selection) {
  if (!sel || typeof sel !== 'object') throw new ValidationError('selection', 'give ids, type, fingerprint or all: true');
  checkSelectionFields(sel);
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

