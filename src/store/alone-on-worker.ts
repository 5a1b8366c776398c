/**
 * Whether a job whose lease expired was alone on its worker (RescueParams.decide's `alone`): only then is the
 * crash blamed on it. A dead worker's jobs expire at different times (each type has its own lease; a job
 * claimed after the last heartbeat expires later), so they are rescued in different passes, and each pass must
 * see the others: a job is alone only when no other job still runs under its lease owner (expired or not) and
 * none of that owner's jobs was rescued after this one started (the worker was dead by then, or losing jobs).
 */
import type { Job } from '../job.ts';

/** What a store reads of one lease owner before it decides a rescue pass. */
export interface OwnerState {
  /** Jobs running under the owner, the expired ones included. */
  running: number;
  /** When one of its jobs was last rescued (a `lease_expired` event naming it), if ever. */
  lastRescueAt: number | null;
}

export function aloneOnWorker(job: Job, owner: OwnerState | undefined): boolean {
  if (!owner) return true;
  // The job's own earlier rescues came before its current attempt started (a rescue at the claim's millisecond too).
  return owner.running <= 1 && (owner.lastRescueAt === null || owner.lastRescueAt <= (job.startedAt ?? 0));
}
