/**
 * Prometheus metrics, one prom-client Registry per Rebound instance. Counters
 * and histograms are fed by the typed events (events.ts); queue depth, oldest
 * waiting age and the dead letter count are read from the store on scrape.
 * Labels are job types, queues, outcomes and states: never payload values.
 *
 * Which metric comes from which event:
 *   rebound_jobs_enqueued_total{type,queue}          job:enqueued (new jobs)
 *   rebound_jobs_deduplicated_total{type}            job:enqueued (deduplicated: true)
 *   rebound_jobs_started_total{type}                 job:started
 *   rebound_jobs_completed_total{type,outcome}       job:completed (completed, or compensated), job:retry (retried), job:dead (dead),
 *                                                    job:lease_lost (lease_lost), job:snoozed (snoozed), job:released (released)
 *   rebound_job_run_duration_seconds{type,outcome}   job:completed, job:retry, job:dead (durationMs)
 *   rebound_job_pickup_latency_seconds{type}         job:started (claim time minus run-at)
 *   rebound_job_retries_total{type}                  job:retry
 *   rebound_jobs_dead_total{type,reason}             job:dead (growth of the dead letter queue)
 *   rebound_lease_expiries_total{outcome}            job:lease_expired (requeued | dead)
 *   rebound_jobs_cancelled_total{type}               job:cancelled
 *   rebound_jobs_redriven_total / _purged_total      job:redriven / job:purged
 *   rebound_operator_actions_total{action}           operator:action
 *   rebound_worker_errors_total{during}              worker:error
 *   rebound_breaker_state{breaker}                   store, on scrape (0 closed, 1 half-open, 2 open)
 *   rebound_breaker_transitions_total{breaker,state} breaker:changed
 *   rebound_jobs_pruned_total{type,state}            retention:pruned
 *   rebound_schedule_fires_total{schedule}           schedule:fired
 *   rebound_leader{lease}                            leadership:changed (1 while this process leads)
 *   rebound_worker_processes                         supervisor:process_started / supervisor:process_exited
 *   rebound_worker_restarts_total{reason}            supervisor:process_restarting
 *   rebound_worker_exits_total{reason}               supervisor:process_exited (crashed, unresponsive, recycled, stopped, drained)
 *   rebound_worker_crash_loops_total                 supervisor:crash_loop
 *   rebound_retry_budget_exhausted_total{type}       retry_budget:exhausted
 *   rebound_queue_backlog_growing_total{queue}       queue:backlog_growing
 *   rebound_queue_depth{state}                       store, on scrape
 *   rebound_oldest_waiting_age_seconds               store, on scrape (oldest run-at among jobs due and unclaimed)
 *   rebound_dead_letter_jobs                         store, on scrape
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { ReboundEmitter } from '../events.ts';
import { JOB_STATES } from '../job.ts';
import type { Store } from '../store/store.ts';
import { HotCounter, HotHistogram, registerHot } from './hot-metrics.ts';
import { on, onLoose, str, type Unsubscribe } from './subscribe.ts';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const BREAKER_STATES: Record<string, number> = { closed: 0, half_open: 1, 'half-open': 1, open: 2 };

export interface MetricsDeps {
  events: ReboundEmitter;
  store: Store;
  now: () => number;
  /** A registry to register into (for example prom-client's global `register`); default: a new one. */
  registry?: Registry;
}

/**
 * The stores a registry's read-on-scrape gauges read: each live client's that registered into it, newest last.
 * The gauges are made once per registry, so they cannot hold the first client's store: once that client closed,
 * every scrape of a shared registry (prom-client's global one) threw. They read the newest live client's store;
 * with none left, they report nothing.
 */
const readers = new WeakMap<Registry, { store: Store; now: () => number }[]>();

export class ReboundMetrics {
  readonly registry: Registry;
  private readonly off: Unsubscribe[] = [];
  private readonly reader: { store: Store; now: () => number };

  constructor({ events, store, now, registry }: MetricsDeps) {
    const r = (this.registry = registry ?? new Registry());
    this.reader = { store, now };
    const live = readers.get(r) ?? readers.set(r, []).get(r)!;
    live.push(this.reader);
    const source = () => live.at(-1);
    const registers = [r];
    // A shared registry (prom-client's global one) may already hold Rebound's metrics from another client: reuse them.
    const once = <M>(name: string, make: () => M): M => (r.getSingleMetric(name) as M | undefined) ?? make();
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
      once(name, () => new Counter<L>({ name, help, labelNames, registers }));
    // The four metrics every job touches are counted without prom-client's per-call label hashing (hot-metrics.ts).
    const hotCounter = (name: string, help: string, labelNames: [string] | [string, string]) => registerHot(r, new HotCounter(name, help, labelNames));
    const hotHistogram = (name: string, help: string, labelNames: [string] | [string, string]) =>
      registerHot(r, new HotHistogram(name, help, labelNames, DURATION_BUCKETS));

    const enqueued = counter('rebound_jobs_enqueued_total', 'Jobs enqueued (new jobs, not deduplicated).', ['type', 'queue']);
    const deduplicated = counter('rebound_jobs_deduplicated_total', 'Enqueues answered by an existing job with the same idempotency key.', ['type']);
    const started = hotCounter('rebound_jobs_started_total', 'Attempts started.', ['type']);
    const completed = hotCounter('rebound_jobs_completed_total', 'Attempts ended, by outcome.', ['type', 'outcome']);
    const runDuration = hotHistogram('rebound_job_run_duration_seconds', 'How long attempts ran.', ['type', 'outcome']);
    const pickup = hotHistogram('rebound_job_pickup_latency_seconds', 'From a job being due (run-at) to its claim (or its hand-off to an idle worker, at enqueue).', ['type']);
    const retries = counter('rebound_job_retries_total', 'Failed attempts scheduled for a retry.', ['type']);
    const dead = counter('rebound_jobs_dead_total', 'Jobs moved to the dead letter queue by a failed attempt.', ['type', 'reason']);
    const expiries = counter('rebound_lease_expiries_total', 'Leases that expired (the worker died or froze).', ['outcome']);
    const cancelled = counter('rebound_jobs_cancelled_total', 'Jobs cancelled.', ['type']);
    const redriven = counter('rebound_jobs_redriven_total', 'Dead jobs sent back to the queue.');
    const purged = counter('rebound_jobs_purged_total', 'Dead jobs deleted.');
    const operator = counter('rebound_operator_actions_total', 'State-changing operator actions.', ['action']);
    const workerErrors = counter('rebound_worker_errors_total', 'Errors inside workers (claims, heartbeats, listeners).', ['during']);
    const breakerTransitions = counter('rebound_breaker_transitions_total', 'Circuit breaker transitions.', ['breaker', 'state']);
    const processes = once('rebound_worker_processes', () => new Gauge({ name: 'rebound_worker_processes', help: 'Worker processes up (as reported by a supervisor).', registers }));
    const restarts = counter('rebound_worker_restarts_total', 'Worker processes restarted by the supervisor.', ['reason']);
    const exits = counter('rebound_worker_exits_total', 'Worker processes that exited, by reason.', ['reason']);
    const crashLoops = counter('rebound_worker_crash_loops_total', 'Times the supervisor saw a crash loop and backed off.');
    const budget = counter('rebound_retry_budget_exhausted_total', 'Times a job type hit its retry budget.', ['type']);
    const backlog = counter('rebound_queue_backlog_growing_total', 'Warnings that a queue backlog will not drain.', ['queue']);
    const pruned = counter('rebound_jobs_pruned_total', 'Finished jobs deleted by retention.', ['type', 'state']);
    const fires = counter('rebound_schedule_fires_total', 'Schedule fire times that produced a job.', ['schedule']);
    const leader = once('rebound_leader', () => new Gauge({ name: 'rebound_leader', help: '1 while this process holds the lease.', labelNames: ['lease'], registers }));

    once('rebound_queue_depth', () =>
      new Gauge({
        name: 'rebound_queue_depth',
        help: 'Jobs by state, read from the store on scrape.',
        labelNames: ['state'],
        registers,
        async collect() {
          this.reset();
          const src = source();
          if (!src) return;
          const counts = await src.store.countByState();
          for (const s of JOB_STATES) this.set({ state: s }, counts[s] ?? 0);
        },
      }),
    );
    // From the store, not from breaker:changed: that event comes only in the process that made the transition, so
    // another process's gauge kept the state it last saw, and a restarted one had none for a breaker left open.
    once('rebound_breaker_state', () =>
      new Gauge({
        name: 'rebound_breaker_state',
        help: 'Circuit breaker state, read from the store on scrape: 0 closed, 1 half-open, 2 open.',
        labelNames: ['breaker'],
        registers,
        async collect() {
          this.reset();
          const src = source();
          if (!src) return;
          for (const b of await src.store.breakers.list()) this.set({ breaker: b.name }, BREAKER_STATES[b.state] ?? -1);
        },
      }),
    );
    once('rebound_dead_letter_jobs', () =>
      new Gauge({
        name: 'rebound_dead_letter_jobs',
        help: 'Jobs in the dead letter queue, read from the store on scrape.',
        registers,
        async collect() {
          this.reset();
          const src = source();
          if (src) this.set(await src.store.countJobs({ state: 'dead' }));
        },
      }),
    );
    once('rebound_oldest_waiting_age_seconds', () =>
      new Gauge({
        name: 'rebound_oldest_waiting_age_seconds',
        help: 'How long the oldest job due and not yet claimed has been due, read from the store on scrape (0 when none waits).',
        registers,
        async collect() {
          this.reset();
          const src = source();
          if (!src) return;
          const now = src.now();
          const at = await src.store.visibility.oldestDueRunAt(now);
          this.set(at == null ? 0 : Math.max(0, (now - at) / 1000));
        },
      }),
    );

    const ended = (type: string, outcome: string, durationMs?: number) => {
      completed.inc(type, outcome);
      if (durationMs != null) runDuration.observe(durationMs / 1000, type, outcome);
    };
    this.off.push(
      on(events, 'job:enqueued', (e) => {
        if (e.deduplicated) deduplicated.inc({ type: e.job.type });
        else enqueued.inc({ type: e.job.type, queue: e.job.queue });
      }),
      on(events, 'job:started', (e) => {
        started.inc(e.job.type);
        if (e.job.startedAt != null) pickup.observe(Math.max(0, e.job.startedAt - e.job.runAt) / 1000, e.job.type);
      }),
      // A compensated workflow failed for good (its steps were undone): not a completion.
      on(events, 'job:completed', (e) => ended(e.type, e.state === 'compensated' ? 'compensated' : 'completed', e.durationMs)),
      on(events, 'job:retry', (e) => {
        ended(e.job.type, 'retried', e.durationMs);
        retries.inc({ type: e.job.type });
      }),
      on(events, 'job:dead', (e) => {
        ended(e.job.type, 'dead', e.durationMs);
        dead.inc({ type: e.job.type, reason: e.reason });
      }),
      on(events, 'job:lease_lost', (e) => ended(e.job.type, 'lease_lost')),
      on(events, 'job:snoozed', (e) => ended(e.job.type, 'snoozed')),
      on(events, 'job:lease_expired', (e) => expiries.inc({ outcome: e.dead ? 'dead' : 'requeued' })),
      on(events, 'job:cancelled', (e) => cancelled.inc({ type: e.job.type })),
      on(events, 'job:redriven', (e) => redriven.inc(e.jobIds.length)),
      on(events, 'job:purged', (e) => purged.inc(e.count)),
      on(events, 'operator:action', (e) => operator.inc({ action: e.action })),
      // The first word: a few values ('complete; try 2 follows' is 'complete', as the last try's 'complete' is).
      on(events, 'worker:error', (e) => workerErrors.inc({ during: /^[^\s;:,]*/.exec(e.during)![0] || 'unknown' })),
      onLoose(events, 'breaker:changed', (e) => {
        breakerTransitions.inc({ breaker: str(e.name, 'unknown'), state: str(e.to, 'unknown') });
      }),
      onLoose(events, 'retention:pruned', (e) => {
        const counts = e.counts && typeof e.counts === 'object' ? (e.counts as Record<string, unknown>) : {};
        for (const [type, n] of Object.entries(counts)) if (typeof n === 'number') pruned.inc({ type, state: str(e.state) }, n);
      }),
      onLoose(events, 'schedule:fired', (e) => fires.inc({ schedule: str(e.schedule, 'unknown') })),
      onLoose(events, 'leadership:changed', (e) => leader.set({ lease: str(e.lease, 'unknown') }, e.leader === true ? 1 : 0)),
      onLoose(events, 'supervisor:process_started', () => processes.inc()),
      onLoose(events, 'supervisor:process_exited', (e) => {
        processes.dec();
        exits.inc({ reason: str(e.reason, 'unknown') });
      }),
      onLoose(events, 'supervisor:process_restarting', (e) => restarts.inc({ reason: str(e.reason, 'unknown') })),
      onLoose(events, 'supervisor:crash_loop', () => crashLoops.inc()),
      onLoose(events, 'retry_budget:exhausted', (e) => budget.inc({ type: str(e.type, 'unknown') })),
      onLoose(events, 'queue:backlog_growing', (e) => backlog.inc({ queue: str(e.queue, 'unknown') })),
    );
    // 'job:released' was added to the event map with the core; count it when present.
    this.off.push(onLoose(events, 'job:released', () => completed.inc('', 'released')));
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const off of this.off.splice(0)) off();
    const live = readers.get(this.registry);
    const i = live?.indexOf(this.reader) ?? -1;
    if (i >= 0) live!.splice(i, 1);
  }
}
