/**
 * Brings back the jobs of dead workers: a job whose lease expired returns to
 * the queue within one rescue interval, and the expiry is counted. A job whose
 * workers keep dying is poison and goes to the dead letter queue. The same pass
 * wakes workflow parents whose finishing child could not wake them (a child that
 * finished while its parent was going to sleep, see WorkflowStore.wakeMissed).
 */
import type { JobDefinition } from '../define.ts';
import { DEFAULTS } from '../define.ts';
import { leaseExpiredError } from '../engine/error-info.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Job } from '../job.ts';
import type { RescueDecision, Store } from '../store/store.ts';

/**
 * A crash is blamed on a job only when the job was alone on the worker that died
 * (the store decides `alone` from every job of the lease owner, rescued in this pass
 * or another: store/alone-on-worker.ts). When several jobs of one worker expire, any
 * of them (or none: a kill, an out-of-memory) may be the cause; each is requeued as a suspect that runs
 * alone, where a crash can be blamed. So a poison job is caught after
 * `maxCrashes` + 1 crashes of its own, and the jobs that shared its worker are
 * not condemned with it.
 */
export function decideExpired(job: Job, def: JobDefinition | undefined, crash: { alone: boolean }): RescueDecision {
  const error = leaseExpiredError(job.type, job.leaseOwner);
  const maxCrashes = def?.maxCrashes ?? DEFAULTS.maxCrashes;
  const crashes = job.crashCount + (crash.alone ? 1 : 0);
  if (crashes > maxCrashes) return { kind: 'dead', reason: 'poison', error: { ...error, kind: 'poison' }, crashes };
  if (job.attempt >= job.maxAttempts) return { kind: 'dead', reason: 'exhausted', error, crashes };
  return { kind: 'requeue', error, crashes, isolate: !crash.alone || job.isolated };
}

export class LeaseRescuer {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly store: Store,
    private readonly defs: Map<string, JobDefinition>,
    private readonly events: ReboundEmitter,
    private readonly now: () => number,
    private readonly intervalMs: number,
  ) {}

  /** One pass; tests call it directly. */
  async runOnce(): Promise<{ requeued: string[]; dead: string[] }> {
    // Its own failure must not hold back the rescue of expired leases.
    await this.store.workflows
      .wakeMissed(this.now())
      .catch((error) => this.events.emit('worker:error', { workerId: '-', error, during: 'missed workflow wake-ups' }));
    const result = await this.store.rescueExpiredLeases({
      now: this.now(),
      limit: 1000,
      decide: (job, crash) => decideExpired(job, this.defs.get(job.type), crash),
    });
    for (const id of result.requeued) this.events.emit('job:lease_expired', { jobId: id, dead: false });
    for (const id of result.dead) this.events.emit('job:lease_expired', { jobId: id, dead: true });
    return result;
  }

  start(): void {
    if (this.timer) return;
    // A jittered first run, so workers started together do not rescue in lockstep.
    const tick = (delay: number) => {
      this.timer = setTimeout(() => {
        this.running = this.runOnce()
          .catch((error) => this.events.emit('worker:error', { workerId: '-', error, during: 'lease rescue' }))
          .finally(() => {
            this.running = null;
            if (this.timer) tick(this.intervalMs);
          });
      }, delay);
      this.timer.unref();
    };
    tick(Math.floor(Math.random() * this.intervalMs));
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
