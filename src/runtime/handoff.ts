/**
 * The worker's half of the hand-off (store/handoff.ts). While the worker is
 * idle it keeps an offer of its free slots open; the store hands new jobs to
 * it inside their enqueue, and a notification names each one. This module
 * fetches the jobs it is told of and gives them to the worker; a notification
 * that carries its job (most do) delivers it without a fetch.
 *
 * Exactly once: fetches run one at a time, and each leaves out the jobs the
 * worker already holds (buffered or in flight, which lasts until the outcome
 * is committed). A job is 'running' under token 1 until its outcome commits,
 * so a fetch that starts after the job was delivered either sees it held or
 * sees it finished; it never delivers it again. A notification that went
 * missing (the LISTEN connection dropped) shows up as the store's hand-off
 * count running ahead of the notifications heard: the next fetch then takes
 * every job handed to this worker that it does not hold.
 *
 * A job carried by its notification is delivered at once only when nothing
 * else can have delivered it: no fetch is in flight (a sweep might return
 * it), no sweep has delivered it already (`swept`: a notification can arrive
 * after the sweep that found its job, even after the job finished), and the
 * worker does not hold it. Otherwise its id goes the fetch's way, which reads
 * the job's current state.
 */
import type { Job } from '../job.ts';
import type { HandoffStore } from '../store/handoff.ts';

/** The most swept jobs remembered (HandoffClient.swept). */
const MAX_SWEPT = 10_000;

export interface HandoffDeps {
  store: HandoffStore;
  workerId: string;
  now: () => number;
  /** Ids of the jobs the worker holds now (buffered, running, or committing their outcome). */
  held: () => Set<string>;
  /** Takes handed jobs: the worker buffers and runs them like claimed ones. Called after every fetch, maybe with none. */
  deliver: (jobs: Job[]) => void;
  /**
   * Whether no claim is in flight. A sweep (a fetch of every job leased to this worker under token 1)
   * cannot tell a handed job from one a claim in flight has just taken, so sweeps and claims never overlap.
   */
  canSweep: () => boolean;
  onError: (error: unknown, during: string) => void;
}

export interface OfferWanted {
  /** Slots the worker could start a job in now. */
  free: number;
  queues: string[];
  types: string[];
  leaseMs: number;
  /** How long an offer stays valid without renewal. */
  ttlMs: number;
}

export class HandoffClient {
  /** The open offer as far as this worker knows: slots when offered, hand-offs heard of since, when it lapses. */
  private offered: { slots: number; heard: number; expiresAt: number } | null = null;
  /** Offer and withdraw statements run in order, one at a time, so the last one sent decides. */
  private chain: Promise<void> = Promise.resolve();
  private offerQueued = false;
  /** Bumped by each withdrawal and new connection: an offer sent before it does not count as open when it returns. */
  private generation = 0;
  /**
   * The store's hand-off count for this worker's offer row when last read, and the notifications heard
   * since. A row withdrawn and offered again counts from 0, so each reading is compared as a difference.
   */
  private counted = 0;
  private heardSince = 0;
  private readonly announced: string[] = [];
  /**
   * Jobs a sweep delivered whose notification has not been heard yet (oldest first). A connection's
   * unheard notifications are lost with it, so a new connection starts the set afresh.
   */
  private readonly swept = new Set<string>();
  private sweepWanted = false;
  private fetching: Promise<void> | null = null;
  private sweepInFlight = false;
  private closed = false;
  /** The connection this worker hears hand-offs on; no offer without one. */
  private listener: number | null = null;
  private listenedBefore = false;

  constructor(private readonly deps: HandoffDeps) {}

  /**
   * The store listens for this worker on `connection` now (null: it lost it and reconnects). A new one needs a
   * new offer. A connection that replaces a lost one sweeps at once: the notifications sent while none listened
   * are lost, and a busy worker may not offer (and read the count) again for a long time.
   */
  listening(connection: number | null): void {
    if (connection === this.listener) return;
    this.listener = connection;
    this.swept.clear();
    this.offered = null;
    this.generation++; // an offer in flight names the old connection: it does not count as open
    if (connection === null) return;
    if (this.listenedBefore) {
      this.sweepWanted = true;
      this.pump();
    }
    this.listenedBefore = true;
  }

  /** A notification: job `jobId` was handed to worker `workerId` (every worker hears every hand-off), maybe with the job. */
  handed(jobId: string, workerId: string, job?: Job): void {
    if (workerId !== this.deps.workerId || this.closed) return;
    this.heardSince++;
    if (this.offered) this.offered.heard++;
    if (this.swept.delete(jobId) || !job || this.fetching || this.deps.held().has(jobId)) {
      this.announced.push(jobId);
      this.pump();
      return;
    }
    this.deps.deliver([job]);
  }

  /**
   * Called while the worker is idle: opens or renews the offer when fewer than half the free slots
   * remain in it, more slots than are free (a claim or a sweep filled some: the jobs handed over would
   * wait here while another worker idles), or half its life is gone. Withdraws it when no slot is free.
   */
  keep(w: OfferWanted): void {
    if (this.closed) return;
    if (this.sweepWanted) this.pump();
    if (this.offerQueued || this.listener === null) return;
    const o = this.offered;
    const left = o ? o.slots - o.heard : 0;
    if (w.free <= 0) {
      if (left > 0) void this.withdraw();
      return;
    }
    if (w.types.length === 0) return;
    const now = this.deps.now();
    if (o && left >= w.free / 2 && left <= w.free && now < o.expiresAt - w.ttlMs / 2) return;
    this.offerQueued = true;
    const generation = this.generation;
    const offer = { workerId: this.deps.workerId, listener: this.listener, queues: w.queues, types: w.types, slots: w.free, leaseMs: w.leaseMs, ttlMs: w.ttlMs, now };
    this.chain = this.chain.then(async () => {
      try {
        const handed = await this.deps.store.offer(offer);
        if (generation === this.generation) this.offered = { slots: w.free, heard: 0, expiresAt: now + w.ttlMs };
        this.reconcile(handed, false);
      } catch (error) {
        this.deps.onError(error, 'offer');
      } finally {
        this.offerQueued = false;
      }
    });
  }

  /** The worker is busy (or isolating a suspect): no more hand-offs until it offers again. */
  withdraw(): Promise<void> {
    if (!this.offered && !this.offerQueued) return this.chain;
    this.generation++;
    this.offered = null;
    this.chain = this.chain.then(() =>
      this.deps.store.withdraw(this.deps.workerId).then(
        (handed) => this.reconcile(handed, true),
        (error) => this.deps.onError(error, 'withdraw offer'),
      ),
    );
    return this.chain;
  }

  /**
   * Compares the store's count with the notifications heard since the last reading: if the store handed
   * over more, some notification has not arrived (yet, or ever), so the next fetch sweeps for the jobs.
   * (A notification that arrives after the reading only causes a sweep that finds nothing new.)
   */
  private reconcile(handed: number, rowGone: boolean): void {
    const sinceLast = handed >= this.counted ? handed - this.counted : handed; // a smaller count: a new row
    if (sinceLast > this.heardSince && !this.closed) {
      this.sweepWanted = true;
      this.pump();
    }
    this.heardSince = 0;
    this.counted = rowGone ? 0 : handed;
  }

  /**
   * On stop: withdraws the offer, then fetches every job handed to this worker that it does not
   * hold, so the worker can release them with its other unstarted jobs.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    this.offered = null;
    await this.chain;
    // Once the offer's row is gone, no enqueue can hand this worker a job (an enqueue holding the row commits first).
    await this.deps.store.withdraw(this.deps.workerId).catch((error) => this.deps.onError(error, 'withdraw offer'));
    while (this.fetching) await this.fetching;
    this.announced.length = 0;
    this.sweepWanted = true;
    await this.fetch(true); // the worker's claims have settled by now
  }

  /**
   * Starts the next fetch unless one is running or none is wanted. The worker calls it as each claim settles:
   * a sweep waits while a claim is out, and a worker working through a backlog always has the next one out soon.
   */
  pump(): void {
    if (this.fetching || this.closed || (!this.sweepWanted && this.announced.length === 0)) return;
    this.fetching = this.fetch().finally(() => {
      this.fetching = null;
      // A failed fetch leaves a sweep wanted: the next keep() or settled claim retries it, not a tight loop here.
      if (this.announced.length) this.pump();
    });
  }

  /** Whether a sweep is in flight: the worker sends no claim meanwhile. */
  get sweeping(): boolean {
    return this.sweepInFlight;
  }

  /** Notes the jobs a sweep found, so that their notifications, if they come, do not deliver them again. */
  private rememberSwept(jobs: Job[]): void {
    for (const j of jobs) this.swept.add(j.id);
    // Bounded: only a notification lost without its connection closing (it does not happen in PostgreSQL;
    // the tests drop them by disabling the trigger) leaves an entry for good.
    for (const id of this.swept) {
      if (this.swept.size <= MAX_SWEPT) break;
      this.swept.delete(id);
    }
  }

  private async fetch(closing = false): Promise<void> {
    const held = this.deps.held();
    const sweep = this.sweepWanted && (closing || this.deps.canSweep());
    const only = sweep ? undefined : this.announced.splice(0).filter((id) => !held.has(id));
    if (sweep) {
      this.announced.length = 0;
      this.sweepWanted = false;
    }
    if (only && only.length === 0) return;
    this.sweepInFlight = sweep;
    try {
      const jobs = await this.deps.store.handedJobs(this.deps.workerId, { only, except: sweep ? [...held] : [] });
      this.sweepInFlight = false;
      if (sweep) this.rememberSwept(jobs);
      this.deps.deliver(jobs);
    } catch (error) {
      this.sweepInFlight = false;
      this.deps.onError(error, 'fetch handed jobs');
      // Its jobs are leased to this worker: look for them with the next fetch.
      this.sweepWanted = true;
      this.deps.deliver([]);
    }
  }
}
