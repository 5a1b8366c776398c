/**
 * The worker process's side of supervision (runtime/supervisor.ts). When the
 * process was forked by a supervisor (an IPC channel and REBOUND_SUPERVISED=1):
 * - it sends a heartbeat over IPC from its own event loop, so a blocked loop
 *   stops the heartbeats and the supervisor replaces the process;
 * - a handler still running `timeoutMs` plus a grace period after its start has
 *   ignored its abort signal: the worker has already failed that attempt with
 *   a TimeoutError, and the process now recycles itself (tells the supervisor,
 *   stops gracefully, exits), since only a new process gets rid of the handler;
 * - if the supervisor dies (the IPC channel closes), it drains and exits; the
 *   leases of anything it could not finish bring those jobs back;
 * - a `hurry` message (the supervisor's second Ctrl-C) ends its stop's grace now.
 */
import type { Rebound } from '../rebound.ts';
import type { Worker } from './worker.ts';

/** Messages a supervised worker sends to its supervisor. */
export type ChildMessage =
  | { type: 'heartbeat'; at: number; inFlight: number }
  | { type: 'ready'; workerId: string }
  | { type: 'recycle'; jobId: string; jobType: string; reason: string };

/** Messages the supervisor sends to a worker process: `hurry` ends its stop's grace now (a second Ctrl-C). */
export type SupervisorMessage = { type: 'hurry' };

export const SUPERVISED_ENV = 'REBOUND_SUPERVISED';

export interface SupervisedChild {
  attach(worker: Worker): void;
  /** Ends the process once the worker has stopped: a handler that ignored its abort must not keep it alive. */
  exit(code?: number): never;
}

export function isSupervised(): boolean {
  return typeof process.send === 'function' && process.env[SUPERVISED_ENV] === '1';
}

/** Call before `rebound.work()`; returns null when the process is not supervised. */
export function supervisedChild(rebound: Rebound): SupervisedChild | null {
  if (!isSupervised()) return null;
  // Set by the supervisor from its checked options; 0 is a real grace (recycle at once), not "unset".
  const heartbeatMs = fromEnv('REBOUND_HEARTBEAT_MS', 1000);
  const graceMs = fromEnv('REBOUND_TIMEOUT_GRACE_MS', 5000);
  const send = (m: ChildMessage) => {
    if (process.connected) process.send!(m, undefined, undefined, () => {});
  };
  let worker: Worker | null = null;
  let recycling = false;

  rebound.use({
    name: 'supervised-child',
    wraps: (_job, def) => Boolean(def.timeoutMs),
    wrap: async (next, _ctx, job, def) => {
      const run = next();
      const timer = setTimeout(() => {
        if (recycling) return;
        recycling = true;
        const reason = `handler of job ${job.id} (${job.type}) ignored its abort for ${graceMs} ms past its ${def.timeoutMs} ms timeout`;
        rebound.logger.error({ job_id: job.id, type: job.type, status: 'recycle' }, `${reason}; recycling this worker process`);
        send({ type: 'recycle', jobId: job.id, jobType: job.type, reason });
        void worker?.stop();
      }, def.timeoutMs! + graceMs);
      timer.unref();
      try {
        return await run;
      } finally {
        clearTimeout(timer);
      }
    },
  });

  const beat = setInterval(() => send({ type: 'heartbeat', at: Date.now(), inFlight: worker?.activeJobs ?? 0 }), heartbeatMs);
  beat.unref();
  // The supervisor may die before this process listens (while it was still loading): then the
  // channel is already closed and 'disconnect' will never come. Either way the worker must not outlive it.
  let orphaned = !process.connected;
  process.once('disconnect', () => {
    orphaned = true;
    rebound.logger.warn({}, 'supervisor gone; draining and exiting');
    void worker?.stop();
  });

  let hurried = false;
  process.on('message', (m: SupervisorMessage) => {
    if (m?.type !== 'hurry') return;
    hurried = true;
    rebound.logger.warn({ running: worker?.activeJobs ?? 0 }, 'supervisor hurried the stop: the running jobs are aborted and released now');
    void worker?.stop({ graceMs: 0 });
  });

  return {
    attach(w) {
      worker = w;
      if (orphaned || !process.connected) {
        rebound.logger.warn({}, 'supervisor gone before this worker started; draining and exiting');
        void w.stop();
        return;
      }
      if (hurried) void w.stop({ graceMs: 0 });
      send({ type: 'ready', workerId: w.id });
      send({ type: 'heartbeat', at: Date.now(), inFlight: 0 });
    },
    exit(code = 0) {
      clearInterval(beat);
      process.exit(code);
    },
  };
}

/** A whole number of milliseconds from the environment, or `fallback` when it is unset or not one. */
function fromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}
