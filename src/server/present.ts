/**
 * How jobs leave the server. The one place that decides, by role, whether a
 * caller sees a job's payload as stored or with its sensitive fields masked
 * (the payload itself, the payload copies error snapshots and some history
 * events carry, and the payload a schedule enqueues at each fire).
 */
import type { Attempt, Job, JobEvent, Json } from '../job.ts';
import { can, type Principal } from './auth.ts';
import type { OperatorProviders } from './providers.ts';

export interface PresentedJob extends Job {
  /** true: sensitive payload fields were masked for this caller's role. */
  masked: boolean;
}

/** What a role without `unmasked` sees of a job's payload and result when this server does not hold the job type's definition. */
export const DEFINITION_NOT_LOADED = '[masked: definition not loaded]';

/**
 * Without a type's definition the server cannot know its sensitive paths: a caller who would see them
 * masked (viewers and operators) then sees none of the job's data (fail closed). Admins see it as stored.
 */
function hidden(type: string, providers: OperatorProviders): boolean {
  return !!providers.hasDefinition && !providers.hasDefinition(type);
}

function masker(who: Principal, providers: OperatorProviders): ((type: string, payload: Json) => Json) | null {
  if (can(who.role, 'unmasked') || !providers.mask) return null;
  const mask = providers.mask;
  return (type, payload) => (hidden(type, providers) ? DEFINITION_NOT_LOADED : mask(type, payload));
}

type Mask = (type: string, payload: Json) => Json;

/** An error snapshot with its payload copy masked. */
function maskError<E>(error: E, type: string, mask: Mask): E {
  const e = error as { payload?: Json } | null | undefined;
  return e && typeof e === 'object' && e.payload !== undefined ? ({ ...e, payload: mask(type, e.payload) } as E) : error;
}

export function presentJob(job: Job, who: Principal, providers: OperatorProviders): PresentedJob {
  const mask = masker(who, providers);
  if (!mask) return { ...job, masked: false };
  const payload = mask(job.type, job.payload as Json);
  // A result may repeat what the payload holds: hidden with it.
  const result = hidden(job.type, providers) && job.result != null ? DEFINITION_NOT_LOADED : job.result;
  const lastError = maskError(job.lastError, job.type, mask);
  return { ...job, payload, result, lastError, masked: JSON.stringify(payload) !== JSON.stringify(job.payload) };
}

export function presentHistory(job: Job, history: JobEvent[], who: Principal, providers: OperatorProviders): JobEvent[] {
  const mask = masker(who, providers);
  if (!mask) return history;
  return history.map((e) => {
    if (!e.data) return e;
    const data = { ...e.data };
    if ('payload' in data) data.payload = mask(job.type, data.payload);
    if (data.error) data.error = maskError(data.error, job.type, mask);
    return { ...e, data };
  });
}

export function presentAttempts(job: Job, attempts: Attempt[], who: Principal, providers: OperatorProviders): Attempt[] {
  const mask = masker(who, providers);
  if (!mask) return attempts;
  return attempts.map((a) => (a.error ? { ...a, error: maskError(a.error, job.type, mask) } : a));
}

/** A schedule as this caller may see it: its payload masked as its type's jobs' are (schedules hold a job's payload). */
export function presentSchedule(schedule: unknown, who: Principal, providers: OperatorProviders): unknown {
  const mask = masker(who, providers);
  const s = schedule as { type?: unknown; payload?: Json } | null;
  if (!mask || !s || typeof s.type !== 'string' || s.payload === undefined) return schedule;
  return { ...s, payload: mask(s.type, s.payload) };
}

interface WorkflowShape {
  error?: unknown;
  steps?: { result?: Json | null; error?: unknown }[];
  signals?: { payload?: Json }[];
}

/**
 * A workflow's run as this caller may see it: error snapshots masked as the job's are; for a type the
 * server holds no definition of, step results and signal payloads are hidden as the job's result is.
 */
export function presentWorkflow(job: Job, workflow: Json | null, who: Principal, providers: OperatorProviders): Json | null {
  const mask = masker(who, providers);
  if (!mask || workflow === null) return workflow;
  const w = workflow as WorkflowShape;
  const hide = hidden(job.type, providers);
  const steps = w.steps?.map((st) => ({
    ...st,
    result: hide && st.result != null ? DEFINITION_NOT_LOADED : st.result,
    error: maskError(st.error, job.type, mask),
  }));
  const signals = w.signals?.map((sig) => (hide ? { ...sig, payload: DEFINITION_NOT_LOADED } : sig));
  return { ...w, error: maskError(w.error, job.type, mask), steps, signals } as Json;
}
