/**
 * A worker claims due jobs in batches, runs their handlers with a fenced lease,
 * renews the leases while they run, and reports outcomes in batches. Every
 * write it makes about a job carries the lease token of its claim, so an
 * executor that lost its lease cannot change the job.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { JobDefinition, Logger } from '../define.ts';
import { LeaseLostError, ShutdownError, Snooze, TimeoutError } from '../errors.ts';
import { Batcher } from '../engine/batcher.ts';
import { errorInfo } from '../engine/error-info.ts';
import { storedJson } from '../engine/stored-json.ts';
import { sensitiveValues } from '../observability/redaction.ts';
import type { ReboundEmitter } from '../events.ts';
import { deadReasonOf, endStateOf, type Job, type Json } from '../job.ts';
import { backoffDelay, classifyError } from '../policies/retry.ts';
import { leaseKey, type Completion, type FailOutcome, type Store } from '../store/store.ts';
import { Abort } from './abort.ts';
import { JobRunContext } from './context.ts';
import { HandoffClient } from './handoff.ts';
import { LeaseRescuer } from './lease-rescuer.ts';
import { Pace } from './pace.ts';
import { mapHandlerError, wrapAttempt, type WorkerPlugin } from './plugin.ts';

export interface WorkOptions {
  concurrency?: number;
  /** Queues to claim from; default: every queue the job definitions name. */
  queues?: string[];
  /** Claim at most this many jobs per round trip; default 1000 on PostgreSQL, 500 on SQLite. */
  batchSize?: number;
  /** Poll this often when no wake-up arrives (LISTEN/NOTIFY or in-process). */
  pollIntervalMs?: number;
  rescueIntervalMs?: number;
  /** On stop, how long in-flight jobs may take before they are aborted and released. */
  shutdownGraceMs?: number;
  /** Stop by itself once no job is available, scheduled within a second, or running. */
  drain?: boolean;
  workerId?: string;
}

export interface WorkerDeps {
  store: Store;
  defs: Map<string, JobDefinition>;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
  plugins: WorkerPlugin[];
}

// InFlight and Finished are classes, not object literals, because each lives until its completion is
// committed and so outlives young-generation collections: V8 tracks the survival of objects made by a literal
// and, deciding to allocate them in the old generation (or back), deoptimized the functions that make them,
// execute() among them, its costliest compile, mid-drain. Objects made by `new` are not tracked so.

/** A claimed job, from its start until its outcome is committed. */
class InFlight {
  readonly abort = new Abort();
  /** Settles when the attempt is over: its handler returned (its completion may still be committing) or it failed. */
  done: Promise<void> | undefined = undefined;
  /** Whether the job still holds a concurrency slot: it gives it back once the handler is over, before its outcome is committed. */
  slotHeld = true;
  /** The handler succeeded and the completion waits in the completer's next batch, which ends the lease (commitBatch). */
  committing = false;

  constructor(
    readonly job: Job,
    readonly def: JobDefinition,
  ) {}
}

/** A successful attempt whose completion waits to be committed. */
/** Waits before each further try of an attempt's outcome the store failed: about 2.6 s in all; heartbeats keep the lease meanwhile. */
const OUTCOME_RETRY_MS = [100, 500, 2_000];

class Finished {
  constructor(
    readonly entry: InFlight,
    readonly result: Json | null,
    /** Set when a workflow's handler ended it in another state than 'completed' (job.ts endStateOf). */
    readonly state: Completion['state'],
    readonly started: number,
  ) {}

  completion(): Completion {
    const job = this.entry.job;
    return this.state ? { id: job.id, token: job.leaseToken, result: this.result, state: this.state } : { id: job.id, token: job.leaseToken, result: this.result };
  }
}

export class Worker {
  readonly id: string;
  /** Resolves when the worker has stopped (after `stop()`, or by itself in drain mode). */
  readonly done: Promise<void>;
  private readonly opts: Required<Omit<WorkOptions, 'workerId' | 'queues'>> & { queues: string[] };
  /** Leases held: from claim until the outcome is committed. */
  private readonly inFlight = new Map<string, InFlight>();
  /** A later stop({ graceMs }) asked the grace to end by then (ms since the epoch); the grace timer, to re-arm for it. */
  private hurriedEnd = Infinity;
  private rearmGrace: (() => void) | null = null;
  /** Handlers running now; at most `concurrency`. */
  private busySlots = 0;
  /** Claimed jobs waiting for a slot: one claim round trip fetches the next round while this one runs. */
  private readonly buffer: Job[] = [];
  /** Claims in flight, and how many jobs they may bring. */
  private readonly claims = new Set<Promise<void>>();
  private claiming = 0;
  /** The last claim came back short: the queue ran dry, so wait for a notification, a scheduled job or a poll. */
  private dry = false;
  /** While dry: when to look again (the next scheduled job, or a poll); 0 until the loop has asked. */
  private dryUntil = 0;
  private readonly pace: Pace;
  /**
   * Suspects of a shared crash run alone, so a crash during their run is theirs (lease-rescuer.ts):
   * 'draining' stops claiming until in-flight jobs finish, 'alone' runs one suspect and nothing else.
   */
  private isolation: 'off' | 'draining' | 'alone' = 'off';
  private lastIsolationCheck = 0;
  private readonly completer: Batcher<Finished, void>;
  private readonly rescuer: LeaseRescuer;
  /** While idle, new jobs are handed to this worker inside their enqueue (store/handoff.ts); null where the store cannot. */
  private readonly handoff: HandoffClient | null;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private wakeUp: (() => void) | null = null;
  /** Whether the current sleep ends on new work (a wake), or only on a nudge (it waits for room, not for work). */
  private sleepTakesWake = false;
  private woken = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** Heartbeat rounds sent and not answered yet. */
  private heartbeatsUnanswered = 0;
  /**
   * The lease new jobs get (claims and hand-offs): the shortest of the types this worker serves, which are the
   * ones defined when it started. Heartbeats run every third of it, and extend each job to its own type's lease.
   */
  private newJobsLeaseMs = 0;
  private heartbeatEveryMs = 0;
  private listening: Promise<() => Promise<void>> | null = null;
  private loop: Promise<void> | null = null;
  private resolveDone!: () => void;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly deps: WorkerDeps,
    options: WorkOptions = {},
  ) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const defs = [...deps.defs.values()];
    this.opts = {
      concurrency: options.concurrency ?? 10,
      queues: options.queues ?? [...new Set(defs.map((d) => d.queue))],
      // Larger claims cost the store less per job; SQLite's run on the event loop, so they stay smaller there.
      batchSize: options.batchSize ?? (deps.store.kind === 'sqlite' ? 500 : 1000),
      // SQLite has no cross-process notification: poll often (an idle poll is one indexed read, no lock).
      pollIntervalMs: options.pollIntervalMs ?? (deps.store.kind === 'sqlite' ? 10 : 1000),
      rescueIntervalMs: options.rescueIntervalMs ?? 2000,
      shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
      drain: options.drain ?? false,
    };
    this.done = new Promise((r) => (this.resolveDone = r));
    const c = this.opts.concurrency;
    // Small workers never prefetch: the jobs they hold are the jobs they run, so a crash with one job held is that job's.
    // Up to two batches: a full batch runs down while the next full claim is on its way.
    this.pace = c < 10 ? new Pace(deps.now, 0, 0) : new Pace(deps.now, 2 * this.opts.batchSize, Math.min(4 * c, this.opts.batchSize));
    this.completer = new Batcher((batch) => this.commitBatch(batch), { maxBatch: 1000, maxInFlight: 2 });
    this.rescuer = new LeaseRescuer(deps.store, deps.defs, deps.events, deps.now, this.opts.rescueIntervalMs);
    // A draining worker is about to stop: it takes no offers. Nor does one whose id would not fit a notification.
    this.handoff =
      deps.store.handoff && !this.opts.drain && Buffer.byteLength(this.id) <= MAX_HANDOFF_WORKER_ID
        ? new HandoffClient({
            store: deps.store.handoff,
            workerId: this.id,
            now: deps.now,
            held: () => new Set([...[...this.inFlight.values()].map((f) => f.job.id), ...this.buffer.map((j) => j.id)]),
            deliver: (jobs) => {
              this.buffer.push(...jobs); // after a stop, released by stop()
              this.fill();
              this.nudge();
            },
            canSweep: () => this.claims.size === 0 && this.isolation === 'off',
            onError: (error, during) => this.deps.events.emit('worker:error', { workerId: this.id, error, during }),
          })
        : null;
  }

  get activeJobs(): number {
    return this.inFlight.size;
  }

  async start(): Promise<this> {
    if (this.state !== 'idle') return this;
    this.state = 'running';
    // Not awaited: the first claim need not wait for the LISTEN connection. A job enqueued before it
    // listens is not missed: the store wakes the worker once it does.
    this.listening = this.deps.store.onWake(
      (queue) => {
        if (queue === '*' || this.opts.queues.includes(queue)) this.wake();
      },
      this.handoff ?? undefined,
    );
    this.rescuer.start();
    this.newJobsLeaseMs = Math.min(...[...this.deps.defs.values()].map((d) => d.leaseMs));
    this.heartbeatEveryMs = Math.max(50, Math.floor(this.newJobsLeaseMs / 3));
    this.heartbeatTimer = setInterval(() => void this.heartbeatAll(), this.heartbeatEveryMs);
    this.heartbeatTimer.unref();
    this.loop = this.claimLoop();
    return this;
  }

  /** New work may be waiting (a notification): a sleep for work, and the next one, return at once. */
  private wake() {
    this.woken = true;
    if (this.sleepTakesWake) this.wakeUp?.();
  }

  /** Something changed here (a slot freed, a claim returned): re-plan now, without claiming an empty queue again. */
  private nudge() {
    this.wakeUp?.();
  }

  /** Sleeps until `ms` pass, or a nudge; or at once if woken, unless `onlyNudge` (nothing to do with new work now). */
  private sleep(ms: number, onlyNudge = false): Promise<void> {
    if (this.woken && !onlyNudge) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(t);
        this.wakeUp = null;
        resolve();
      };
      this.wakeUp = done;
      this.sleepTakesWake = !onlyNudge;
    });
  }

  /**
   * Sends a claim whenever there is room and none is in flight (the prefetch
   * brings the next batch before this one runs out). Sleeps when there is no room, and when
   * the queue ran dry until a notification, the next scheduled job or a poll.
   */
  private async claimLoop(): Promise<void> {
    const allTypes = [...this.deps.defs.keys()];
    while (this.state === 'running') {
      const types = await this.claimableTypes(allTypes);
      if (await this.runSuspectAlone(types)) continue;
      const limit = this.claimLimit();
      if (limit > 0 && !this.dry) {
        this.woken = false;
        this.startClaim(types, limit);
        continue;
      }
      if (this.dry && this.claims.size === 0) {
        const gated = types.length < allTypes.length;
        if (this.dryUntil === 0) {
          if (this.opts.drain && (await this.isDrained(allTypes))) break;
          this.dryUntil = this.deps.now() + (gated ? this.opts.pollIntervalMs : await this.idleDelay(types));
        }
        this.offerSlots(types);
        await this.sleep(Math.max(0, this.dryUntil - this.deps.now()));
        // A notification, or the time to look again, ends the dry spell. A nudge (a slot freed, an outcome committed)
        // does not: claiming the empty queue again for each finished job would cost a round trip each. Unless a gate
        // holds types back (it may open by now), or a drain may have run its last job.
        const drainCheck = this.opts.drain && this.inFlight.size === 0;
        if (this.woken || this.deps.now() >= this.dryUntil || gated || drainCheck) {
          this.dry = false;
          this.dryUntil = 0;
        }
        continue;
      }
      // No room, or a claim is still out: a freed slot or the claim's return nudges.
      await this.sleep(this.opts.pollIntervalMs, true);
    }
    await Promise.all(this.claims);
    if (this.opts.drain && this.state === 'running') void this.stop();
  }

  /**
   * How many jobs the next claim may take: the room left under concurrency
   * plus prefetch, counting claims in flight. A claim goes out when the local
   * queue (buffered plus on their way) is down to half the prefetch, or half
   * the capacity is free; not for every freed slot, so claims stay large.
   */
  private claimLimit(): number {
    if (this.claims.size >= MAX_CLAIMS_IN_FLIGHT || this.handoff?.sweeping) return 0;
    const prefetch = this.pace.prefetch();
    const capacity = this.opts.concurrency + prefetch;
    // Outcomes still being committed hold leases but no slot; cap them so a slow store applies backpressure.
    const committing = this.inFlight.size - this.busySlots;
    const room = capacity - this.busySlots - this.buffer.length - this.claiming - Math.max(0, committing - capacity);
    if (room <= 0 || (this.buffer.length + this.claiming > prefetch / 2 && room < capacity / 2)) return 0;
    return Math.min(room, this.opts.batchSize);
  }

  private startClaim(types: string[], limit: number) {
    this.claiming += limit;
    const started = this.deps.now();
    const claim = this.deps.store
      .claimJobs({
        workerId: this.id,
        queues: this.opts.queues,
        types,
        limit,
        leaseMs: this.newJobsLeaseMs,
        now: started,
      })
      .then(
        (jobs) => {
          this.pace.claimed(this.deps.now() - started, jobs.length === limit);
          if (jobs.length < limit) this.dry = true;
          // A full claim: work is waiting, so new jobs queue behind it instead of being handed over.
          else void this.handoff?.withdraw();
          this.buffer.push(...jobs); // after a stop, released by stop()
          this.fill();
        },
        (error) => {
          this.dry = true; // back off for a poll interval
          this.deps.events.emit('worker:error', { workerId: this.id, error, during: 'claim' });
        },
      )
      .finally(() => {
        this.claiming -= limit;
        this.claims.delete(claim);
        this.handoff?.pump(); // a sweep this claim held back may go now
        this.nudge();
      });
    this.claims.add(claim);
  }

  /**
   * Checks (once a second) for suspects waiting to run alone; when there are,
   * stops claiming, lets in-flight jobs finish, then runs one suspect alone.
   * Returns true while it holds the claim loop.
   */
  private async runSuspectAlone(types: string[]): Promise<boolean> {
    if (this.isolation === 'alone') {
      await this.sleep(this.opts.pollIntervalMs);
      this.woken = false;
      return true;
    }
    const now = this.deps.now();
    if (this.isolation === 'off') {
      if (now - this.lastIsolationCheck < 1000) return false;
      this.lastIsolationCheck = now;
      const waiting = await this.deps.store.hasIsolatedJobs(this.opts.queues, types, now).catch(() => false);
      if (!waiting) return false;
      this.isolation = 'draining';
      void this.handoff?.withdraw(); // a suspect runs alone: nothing may be handed to this worker meanwhile
    }
    if (this.inFlight.size > 0 || this.buffer.length > 0 || this.claims.size > 0) {
      // Every worker drains when a suspect appears; once one of them has taken it, the others go back to work.
      if (now - this.lastIsolationCheck >= 1000) {
        this.lastIsolationCheck = now;
        if (!(await this.deps.store.hasIsolatedJobs(this.opts.queues, types, now).catch(() => true))) {
          this.isolation = 'off';
          return false;
        }
      }
      await this.sleep(this.opts.pollIntervalMs);
      this.woken = false;
      return true;
    }
    const [suspect] = await this.deps.store
      .claimJobs({ isolated: true, workerId: this.id, queues: this.opts.queues, types, limit: 1, leaseMs: this.newJobsLeaseMs, now })
      .catch(() => [] as Job[]);
    if (!suspect) {
      this.isolation = 'off';
      return false;
    }
    this.isolation = 'alone';
    void this.run(suspect).finally(() => {
      this.isolation = 'off';
      this.fill();
      this.lastIsolationCheck = 0; // look for the next suspect at once
      this.wake();
    });
    return true;
  }

  /** The types no plugin gate blocks right now. */
  private async claimableTypes(types: string[]): Promise<string[]> {
    if (!this.deps.plugins.some((p) => p.gate)) return types;
    const blocked = new Set<string>();
    for (const p of this.deps.plugins) {
      try {
        for (const t of (await p.gate?.(this.deps.now()))?.blockedTypes ?? []) blocked.add(t);
      } catch (error) {
        this.deps.events.emit('worker:error', { workerId: this.id, error, during: `gate ${p.name}` });
      }
    }
    return blocked.size ? types.filter((t) => !blocked.has(t)) : types;
  }

  /** While idle: offers the free slots, so a new job of these types comes straight here (store/handoff.ts). */
  private offerSlots(types: string[]) {
    if (!this.handoff || this.isolation !== 'off' || this.state !== 'running') return;
    this.handoff.keep({
      free: this.opts.concurrency - this.busySlots - this.buffer.length,
      queues: this.opts.queues,
      types,
      leaseMs: this.newJobsLeaseMs,
      // A worker that died keeps receiving jobs until its offer lapses; theirs wait for their lease to expire.
      ttlMs: Math.max(3000, 3 * this.opts.pollIntervalMs),
    });
  }

  /** How long to sleep when nothing was claimable: until the next scheduled job, at most one poll interval. */
  private async idleDelay(types: string[]): Promise<number> {
    try {
      const next = await this.deps.store.nextRunAt(this.opts.queues, types);
      if (next == null) return this.opts.pollIntervalMs;
      return Math.max(0, Math.min(this.opts.pollIntervalMs, next - this.deps.now()));
    } catch {
      return this.opts.pollIntervalMs;
    }
  }

  /** A store that cannot answer is not drained: the worker looks again after a poll interval. */
  private async isDrained(types: string[]): Promise<boolean> {
    if (this.inFlight.size > 0 || this.buffer.length > 0) return false;
    try {
      // Running jobs first: a rescue may requeue one between the two reads, and then the second sees it waiting.
      // (In the other order a job rescued between them was in neither, and the worker exited with it waiting.)
      for (const type of types) if ((await this.deps.store.countJobs({ state: 'running', type })) > 0) return false;
      const next = await this.deps.store.nextRunAt(this.opts.queues, types);
      return next == null || next > this.deps.now() + 1000;
    } catch (error) {
      this.deps.events.emit('worker:error', { workerId: this.id, error, during: 'drain check' });
      return false;
    }
  }

  /** Starts buffered jobs while slots are free; none beside a suspect running alone (a hand-off may arrive meanwhile). */
  private fill() {
    if (this.isolation === 'alone') return;
    while (this.state === 'running' && this.busySlots < this.opts.concurrency && this.buffer.length) this.run(this.buffer.shift()!);
    if (this.busySlots < this.opts.concurrency && this.buffer.length === 0) this.pace.ranDry();
  }

  // Per job: no named closures here or in execute(). Under tsx (esbuild's keepNames) each one costs a defineProperty.
  private run(job: Job): Promise<void> {
    const def = this.deps.defs.get(job.type)!;
    this.busySlots++;
    const entry = new InFlight(job, def);
    // Keyed by claim, not job: after a lost lease this worker may hold the same job again under a new token.
    const key = leaseKey(job.id, job.leaseToken);
    this.inFlight.set(key, entry);
    this.pace.jobStarted();
    entry.done = this.execute(entry).finally(() => {
      if (!entry.committing) this.inFlight.delete(key);
      if (entry.abort.aborted && entry.abort.work) this.freeSlotOnReturn(entry);
      else this.freeSlot(entry);
      this.nudge();
    });
    return entry.done;
  }

  /**
   * An aborted attempt (timeout, lost lease, cancel) has its outcome already, but its handler may ignore the
   * signal and run on: it keeps its slot until it really returns, so `concurrency` bounds the handlers running.
   */
  private freeSlotOnReturn(entry: InFlight) {
    const free = () => this.freeSlot(entry);
    entry.abort.work!.then(free, free);
    setImmediate(() => {
      if (!entry.slotHeld || this.state !== 'running') return;
      const { job, abort } = entry;
      const reason = (abort.reason as Error)?.message ?? String(abort.reason);
      this.deps.logger.warn({ ...jobBindings(job), status: 'slot_held' }, `handler still running after its abort (${reason}); it keeps its concurrency slot until it returns`);
    });
  }

  private freeSlot(entry: InFlight) {
    if (!entry.slotHeld) return;
    entry.slotHeld = false;
    this.busySlots--;
    this.fill();
    this.nudge();
  }

  /** The handler's logger (`ctx.logger`), made on first use. */
  jobLogger(job: Job): Logger {
    return this.deps.logger.child({ ...jobBindings(job), status: 'running' });
  }

  /** Runs the attempt's handler; on success hands its completion to the completer (commitBatch) and returns. */
  private async execute(entry: InFlight): Promise<void> {
    const { job, def, abort } = entry;
    if (this.mustRenewBeforeStart(job)) {
      try {
        await this.heartbeat(job, def);
      } catch (err) {
        if (err instanceof LeaseLostError) return this.leaseLost(job, 'lease lapsed before the job started; not run');
        // Unsure whose it is: not run here; once its lease lapses, a rescue gives it back to the queue.
        this.deps.events.emit('worker:error', { workerId: this.id, error: err, during: 'renew a lapsing lease before start' });
        return;
      }
    }
    const started = this.deps.now();
    this.deps.events.emit('job:started', { job, workerId: this.id });
    const ctx = new JobRunContext({ job, def, abort, store: this.deps.store, now: this.deps.now, worker: this });
    const plugins = this.deps.plugins;
    let wrapped: (() => Promise<unknown>) | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      let value: unknown;
      try {
        // A plugin that throws here fails the attempt as its handler's error would (it used to reject unhandled,
        // and the job stayed running, renewed by no one, until its lease ran out).
        for (const p of plugins) p.extendContext?.(ctx, job, def);
        wrapped = wrapAttempt(plugins, ctx, job, def);
        if (def.timeoutMs) timer = setTimeout(() => abort.abort(new TimeoutError(def.timeoutMs!)), def.timeoutMs);
        value = await abort.race(wrapped ?? (async () => def.handler(job.payload, ctx)));
      } catch (err) {
        // Unwrapped, the handler's error passes the plugins' mapError here (an abort's reason stands as it is).
        throw wrapped || abort.aborted ? err : mapHandlerError(plugins, err, job, def);
      }
      clearTimeout(timer);
      if (abort.aborted) throw abort.reason;
      const ending = endStateOf(value);
      const result = storedJson(ending ? ending.result : value, "the handler's result");
      this.freeSlot(entry);
      entry.committing = true;
      this.completer.send(new Finished(entry, result, ending?.state, started));
    } catch (err) {
      clearTimeout(timer);
      return this.ended(entry, err, started);
    }
  }

  /**
   * Commits finished attempts' completions in one statement, then settles each: reported, or its lease was lost,
   * or (the store failed the batch on every try) a failed attempt, as a handler's error is. Until then each keeps
   * its lease (it stays in `inFlight`, heartbeats renew it) and holds nothing else: the attempt's frame, context and
   * closures are garbage once its handler is over. A busy worker has a batch or two of attempts waiting here, and a
   * promise and an awaiting frame for each made every young-generation collection copy about 2 KB per attempt.
   */
  private async commitBatch(batch: Finished[]): Promise<void[]> {
    let accepted: boolean[] | null = null;
    let error: unknown;
    try {
      accepted = await this.completeWithRetries(batch);
    } catch (err) {
      error = new Error(`the handler succeeded, but its completion could not be recorded (${(err as Error)?.message ?? String(err)})`, { cause: err });
    }
    const now = this.deps.now();
    const others: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const { entry, state, started } = batch[i];
      const { job } = entry;
      const key = leaseKey(job.id, job.leaseToken);
      if (accepted?.[i]) {
        this.inFlight.delete(key);
        this.deps.events.emit('job:completed', { jobId: job.id, type: job.type, job, durationMs: now - started, workerId: this.id, state: state ?? 'completed' });
      } else {
        const settled = accepted ? this.leaseLost(job) : this.ended(entry, error, started);
        others.push(Promise.resolve(settled).finally(() => this.inFlight.delete(key)));
      }
    }
    await Promise.all(others);
    this.nudge();
    return [];
  }

  /**
   * `store.completeJobs`, tried again after a failure (a dropped connection, a failover, a busy database): the work
   * is done, and a failed attempt would do it again. A try that failed may yet have committed, its answer lost: an
   * item the next try does not accept counts as accepted when the store shows it ended so under its lease token.
   */
  private async completeWithRetries(batch: Finished[]): Promise<boolean[]> {
    const completions = batch.map((f) => f.completion());
    let tries = 0;
    // The size stays out of `during`: it is a metric label (rebound_worker_errors_total), and must take few values.
    const accepted = await this.retried('complete', () => {
      tries++;
      return this.deps.store.completeJobs(completions, this.deps.now());
    });
    if (tries === 1 || accepted.every(Boolean)) return accepted;
    return Promise.all(accepted.map(async (ok, i) => ok || this.endedAsCompleted(completions[i])));
  }

  /**
   * A store write of an attempt's outcome, tried again after a failure. Given up, the job stays running until its
   * lease lapses, and its rescue then counts a crash against it: a database blip is not the job's fault.
   */
  private async retried<T>(during: string, write: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await write();
      } catch (err) {
        if (tries > OUTCOME_RETRY_MS.length) throw err;
        this.deps.events.emit('worker:error', { workerId: this.id, error: err, during: `${during}; try ${tries + 1} follows` });
        await delay(OUTCOME_RETRY_MS[tries - 1]);
      }
    }
  }

  private async endedAsCompleted(c: Completion): Promise<boolean> {
    const job = await this.deps.store.getJob(c.id).catch(() => null);
    return job !== null && job.leaseToken === c.token && job.state === (c.state ?? 'completed');
  }

  /** An attempt that threw, or whose completion could not be committed: its abort's reason, if any, comes first. */
  private ended(entry: InFlight, err: unknown, started: number): Promise<void> | undefined {
    const { job, abort } = entry;
    const reason = abort.aborted ? abort.reason : err;
    if (reason instanceof LeaseLostError) return this.leaseLost(job);
    if (reason instanceof ShutdownError) return; // released by stop(), without charging the attempt
    if (reason instanceof Snooze) return this.snooze(job, reason);
    return this.fail(job, entry.def, reason, this.deps.now() - started, this.deps.logger.child(jobBindings(job)));
  }

  private async fail(job: Job, def: JobDefinition, err: unknown, durationMs: number, log: Logger) {
    const cls = classifyError(err, def.classify);
    const error = errorInfo(err, cls.kind, job.type, sensitiveValues(def, job.payload));
    const now = this.deps.now();
    let outcome: FailOutcome;
    if (cls.kind === 'permanent') outcome = { kind: 'dead', reason: deadReasonOf(err) ?? 'permanent', error };
    else if (job.attempt >= job.maxAttempts) outcome = { kind: 'dead', reason: 'exhausted', error };
    else {
      let delayMs = cls.retryAfterMs ?? backoffDelay(def.retry, job.attempt);
      for (const p of this.deps.plugins) if (p.retryDelay) delayMs = Math.max(delayMs, p.retryDelay(job, def, delayMs, now));
      outcome = { kind: 'retry', delayMs, runAt: now + delayMs, error };
    }
    let ok: boolean;
    try {
      ok = await this.retried('fail', () => this.deps.store.failJob({ id: job.id, token: job.leaseToken, outcome, now }));
    } catch (e) {
      // The store is unreachable: the lease will expire and the job will come back.
      this.deps.events.emit('worker:error', { workerId: this.id, error: e, during: 'fail' });
      return;
    }
    if (!ok) return this.leaseLost(job);
    if (outcome.kind === 'retry') {
      this.lookAgainBy(outcome.runAt);
      log.warn({ status: 'retry', err: error.message, delay_ms: outcome.delayMs }, 'attempt failed; retry scheduled');
      this.deps.events.emit('job:retry', { job, error, delayMs: outcome.delayMs, durationMs, workerId: this.id });
    } else {
      log.error({ status: 'dead', reason: outcome.reason, err: error.message }, 'job moved to the dead letter queue');
      this.deps.events.emit('job:dead', { job, reason: outcome.reason, error, durationMs, workerId: this.id });
    }
  }

  private async snooze(job: Job, s: Snooze) {
    let ok: boolean;
    try {
      ok = await this.retried('snooze', () => this.deps.store.snoozeJob({ id: job.id, token: job.leaseToken, runAt: s.runAt, reason: s.reason, now: this.deps.now() }));
    } catch (error) {
      // The store is unreachable: the lease will expire and the job will come back.
      this.deps.events.emit('worker:error', { workerId: this.id, error, during: 'snooze' });
      return;
    }
    if (!ok) return this.leaseLost(job);
    this.lookAgainBy(s.runAt);
    this.deps.events.emit('job:snoozed', { job, runAt: s.runAt, reason: s.reason, workerId: this.id });
  }

  /** This worker made a job due again at `runAt` (a retry, a snooze): while the queue is dry, look again by then. */
  private lookAgainBy(runAt: number) {
    if (this.dryUntil > runAt) {
      this.dryUntil = runAt;
      this.nudge();
    }
  }

  /**
   * Whether a job about to start must have its lease renewed first. Heartbeats renew each lease every period,
   * so with less than two periods left a renewal is overdue: the next heartbeat may not land before the lease
   * lapses (a third of a lease is not much: half a second's lease is renewed every 166 ms), and a rescue elsewhere
   * would run the job a second time. It is overdue too when the worker stalled (a frozen process, a blocked event
   * loop) while the job waited for a slot or its hand-off's notification: another worker may have rescued and
   * run it meanwhile. The renewal tells which; a failed one leaves the job.
   */
  private mustRenewBeforeStart(job: Job): boolean {
    return job.leaseExpiresAt !== null && this.deps.now() >= job.leaseExpiresAt - 2 * this.heartbeatEveryMs;
  }

  private async leaseLost(job: Job, message = 'lease lost; outcome discarded') {
    this.deps.logger.warn(
      { job_id: job.id, parent_job_id: job.parentId, type: job.type, attempt: job.attempt, status: 'lease_lost', trace_id: traceIdOf(job) },
      message,
    );
    this.deps.events.emit('job:lease_lost', { job, workerId: this.id });
    await this.deps.store
      .recordLeaseLost({ id: job.id, token: job.leaseToken, attempt: job.attempt, worker: this.id }, this.deps.now())
      .catch(() => {});
  }

  /** A buffered job whose lease a heartbeat could not renew (rescued, cancelled, deleted): it is no longer this worker's to start. */
  private dropUnstarted(job: Job) {
    const i = this.buffer.indexOf(job);
    if (i < 0) return;
    this.buffer.splice(i, 1);
    void this.leaseLost(job, 'lease lost before the job started; not run');
  }

  /** Renews one job's lease now (`ctx.heartbeat()`); a lost lease aborts the attempt. */
  async heartbeat(job: Job, def: JobDefinition): Promise<void> {
    const now = this.deps.now();
    const held = await this.deps.store.heartbeatJobs([{ id: job.id, token: job.leaseToken }], def.leaseMs, now);
    if (held.length === 0) {
      this.inFlight.get(leaseKey(job.id, job.leaseToken))?.abort.abort(new LeaseLostError(job.id));
      throw new LeaseLostError(job.id);
    }
    job.leaseExpiresAt = now + def.leaseMs;
  }

  /** Renews every lease this worker holds, one statement per lease length. */
  private async heartbeatAll(): Promise<void> {
    const byLease = new Map<number, { job: Job; abort?: Abort }[]>();
    const add = (leaseMs: number, item: { job: Job; abort?: Abort }) =>
      byLease.set(leaseMs, [...(byLease.get(leaseMs) ?? []), item]);
    for (const f of this.inFlight.values()) if (!f.abort.aborted) add(f.def.leaseMs, f);
    for (const job of this.buffer) add(this.deps.defs.get(job.type)!.leaseMs, { job });
    // The last round has not answered in a heartbeat period (a store that hangs): as if it had failed.
    if (this.heartbeatsUnanswered > 0) for (const group of byLease.values()) this.letGoLapsed(group);
    this.heartbeatsUnanswered++;
    try {
      await this.renew(byLease);
    } finally {
      this.heartbeatsUnanswered--;
    }
  }

  private async renew(byLease: Map<number, { job: Job; abort?: Abort }[]>): Promise<void> {
    for (const [leaseMs, group] of byLease) {
      try {
        const refs = group.map((f) => ({ id: f.job.id, token: f.job.leaseToken }));
        const now = this.deps.now();
        const held = new Set((await this.deps.store.heartbeatJobs(refs, leaseMs, now)).map((r) => leaseKey(r.id, r.token)));
        for (const f of group) {
          if (held.has(leaseKey(f.job.id, f.job.leaseToken))) f.job.leaseExpiresAt = now + leaseMs;
          else if (f.abort) f.abort.abort(new LeaseLostError(f.job.id));
          else this.dropUnstarted(f.job);
        }
      } catch (error) {
        this.deps.events.emit('worker:error', { workerId: this.id, error, during: 'heartbeat' });
        this.letGoLapsed(group);
      }
    }
  }

  /**
   * After a heartbeat failed or hung: a lease that lapsed unrenewed may be rescued and run elsewhere at any moment,
   * so the worker lets go of its job as if the store had said so (the store may be out of reach for this worker
   * alone, and reachable for the one that rescues it).
   */
  private letGoLapsed(group: { job: Job; abort?: Abort }[]) {
    const now = this.deps.now();
    for (const f of group) {
      if (f.job.leaseExpiresAt === null || now < f.job.leaseExpiresAt) continue;
      if (f.abort) f.abort.abort(new LeaseLostError(f.job.id));
      else this.dropUnstarted(f.job);
    }
  }

  /**
   * Gives jobs back on stop, uncharged; tried again after a failure as an outcome is. A release given up leaves its
   * jobs running until their leases lapse, and their rescue then counts a crash or makes them suspects.
   */
  private async release(jobs: Job[]): Promise<void> {
    if (jobs.length === 0) return;
    let released: string[];
    try {
      released = await this.retried('release', () => this.deps.store.releaseJobs(jobs.map((j) => ({ id: j.id, token: j.leaseToken })), this.deps.now()));
    } catch (error) {
      this.deps.events.emit('worker:error', { workerId: this.id, error, during: 'release' });
      return;
    }
    for (const id of released) this.deps.events.emit('job:released', { jobId: id, workerId: this.id });
  }

  /** Ends a stop's grace by `graceMs` from now at the latest, whether its grace has begun or not. */
  private hurry(graceMs: number): void {
    this.hurriedEnd = Math.min(this.hurriedEnd, Date.now() + graceMs);
    this.rearmGrace?.();
  }

  /**
   * Stops claiming, lets in-flight jobs finish within the grace period, then
   * aborts the rest and releases their leases without charging an attempt.
   * Called again while stopping, with a `graceMs`, it can only shorten the grace
   * (`stop({ graceMs: 0 })`: a second Ctrl-C releases the running jobs now).
   */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.stopping) {
      if (opts.graceMs !== undefined) this.hurry(opts.graceMs);
      return this.stopping;
    }
    if (this.state === 'idle') {
      this.state = 'stopped';
      this.resolveDone();
      return (this.stopping = Promise.resolve());
    }
    this.state = 'stopping';
    this.wake();
    this.nudge(); // also out of a sleep that waits for room
    this.stopping = (async () => {
      await this.loop;
      // No more hand-offs; the jobs handed over but not yet fetched join the buffer, to be released below.
      await this.handoff?.close();
      // Claimed but never started: give them back at once, uncharged.
      await this.release(this.buffer.splice(0));
      const graceEnd = Date.now() + (opts.graceMs ?? this.opts.shutdownGraceMs);
      const settled = Promise.all([...this.inFlight.values()].map((f) => f.done));
      let graceTimer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([
        settled.then(() => false),
        new Promise<boolean>((r) => {
          const arm = () => {
            clearTimeout(graceTimer);
            graceTimer = setTimeout(() => r(true), Math.max(0, Math.min(graceEnd, this.hurriedEnd) - Date.now()));
          };
          this.rearmGrace = arm;
          arm();
        }),
      ]);
      this.rearmGrace = null;
      clearTimeout(graceTimer);
      if (expired) {
        // Handlers still running: abort them and give their jobs back. A completion being committed ends its own lease.
        const running = [...this.inFlight.values()].filter((f) => !f.committing);
        for (const f of running) f.abort.abort(new ShutdownError());
        await Promise.all(running.map((f) => f.done));
        await this.release(running.filter((f) => !f.committing).map((f) => f.job));
      }
      await this.completer.drain();
      for (const p of this.deps.plugins) {
        try {
          await p.stop?.();
        } catch (error) {
          // The rest of the stop must still run: a stop that throws here left the worker never done, listening on.
          this.deps.events.emit('worker:error', { workerId: this.id, error, during: `stop ${p.name}` });
        }
      }
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await this.rescuer.stop();
      const unlisten = await this.listening?.catch(() => null);
      await unlisten?.();
      this.state = 'stopped';
      this.resolveDone();
    })();
    return this.stopping;
  }
}

/**
 * One claim in flight. The prefetch already covers two claim round trips, so a second claim would only
 * overlap the first and contend with it: it skips the rows the first has locked (SKIP LOCKED). In A/B
 * drains of 60,000 jobs a second claim cost PostgreSQL up to 3 µs more per job (3-5 µs with claims of
 * 250) and added no throughput beyond the noise.
 */
const MAX_CLAIMS_IN_FLIGHT = 1;

/** The longest worker id (bytes) that takes hand-offs: each one's notification names it, and PostgreSQL's limit is 8,000 bytes. */
const MAX_HANDOFF_WORKER_ID = 1000;

/** The fields every log line about an attempt carries. */
function jobBindings(job: Job) {
  return { job_id: job.id, parent_job_id: job.parentId, type: job.type, attempt: job.attempt, trace_id: traceIdOf(job) };
}

/** The trace id in a job's W3C traceparent (`00-<trace id>-<span id>-<flags>`), for log lines. */
function traceIdOf(job: Job): string | null {
  return job.traceContext ? (job.traceContext.split('-')[1] ?? null) : null;
}
