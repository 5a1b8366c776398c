/**
 * How jobs leave the server. The one place that decides, by role, whether a
 * caller sees a job's payload as stored or with its sensitive fields masked
 * (the payload itself, the payload copies some history events carry, and the
 * payload a schedule enqueues at each fire).
 */
import type { Job, JobEvent, Json } from '../job.ts';
import { can, type Principal } from './auth.ts';
import type { OperatorProviders } from './providers.ts';

export interface PresentedJob extends Job {
  /** true: sensitive payload fields were masked for this caller's role. */
  masked: boolean;
}

function masker(who: Principal, providers: OperatorProviders): ((type: string, payload: Json) => Json) | null {
  if (can(who.role, 'unmasked') || !providers.mask) return null;
  return providers.mask;
}

export function presentJob(job: Job, who: Principal, providers: OperatorProviders): PresentedJob {
  const mask = masker(who, providers);
  if (!mask) return { ...job, masked: false };
  const payload = mask(job.type, job.payload as Json);
  // Error snapshots may carry a copy of the payload too.
  const lastError = job.lastError as (Job['lastError'] & { payload?: Json }) | null;
  const error = lastError && lastError.payload !== undefined ? { lastError: { ...lastError, payload: mask(job.type, lastError.payload) } } : {};
  return { ...job, payload, ...error, masked: JSON.stringify(payload) !== JSON.stringify(job.payload) };
}

export function presentHistory(job: Job, history: JobEvent[], who: Principal, providers: OperatorProviders): JobEvent[] {
  const mask = masker(who, providers);
  if (!mask) return history;
  return history.map((e) => (e.data && 'payload' in e.data ? { ...e, data: { ...e.data, payload: mask(job.type, e.data.payload as Json) } } : e));
}

/** A schedule as this caller may see it: its payload masked as its type's jobs' are (schedules hold a job's payload). */
export function presentSchedule(schedule: unknown, who: Principal, providers: OperatorProviders): unknown {
  const mask = masker(who, providers);
  const s = schedule as { type?: unknown; payload?: Json } | null;
  if (!mask || !s || typeof s.type !== 'string' || s.payload === undefined) return schedule;
  return { ...s, payload: mask(s.type, s.payload) };
}
