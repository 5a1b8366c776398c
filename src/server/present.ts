/**
 * How jobs leave the server. The one place that decides, by role, whether a
 * caller sees a job's payload as stored or with its sensitive fields masked.
 */
import type { Job, Json } from '../job.ts';
import { can, type Principal } from './auth.ts';
import type { OperatorProviders } from './providers.ts';

export interface PresentedJob extends Job {
  /** true: sensitive payload fields were masked for this caller's role. */
  masked: boolean;
}

export function presentJob(job: Job, who: Principal, providers: OperatorProviders): PresentedJob {
  if (can(who.role, 'unmasked') || !providers.mask) return { ...job, masked: false };
  return { ...job, payload: providers.mask(job.type, job.payload as Json), masked: true };
}
