/** Reading path, query and body values, with errors that name the field. */
import { storable, UNSTORABLE_MESSAGE } from '../../config/options.ts';
import { isJobId } from '../../engine/job-query.ts';
import { JOB_STATES, type JobState } from '../../job.ts';
import { badRequest } from '../errors.ts';

/** The same rule as the library's (1-15 digits), so a bad id is reported under the HTTP field's name. */
export function jobId(v: unknown, field = 'id'): string {
  if (!isJobId(v)) throw badRequest(field, 'must be a job id (1 to 15 digits)');
  return v;
}

export function state(v: unknown): JobState | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !(JOB_STATES as readonly string[]).includes(v)) throw badRequest('state', `must be one of ${JOB_STATES.join(', ')}`);
  return v as JobState;
}

export function limit(v: unknown, max: number, dflt: number, field = 'limit'): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || n < 1 || n > max) throw badRequest(field, `must be an integer from 1 to ${max}`);
  return n;
}

export function optionalString(v: unknown, field: string, max = 256): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max) throw badRequest(field, `must be a string of at most ${max} characters`);
  if (!storable(v)) throw badRequest(field, UNSTORABLE_MESSAGE);
  return v;
}

export function body(v: unknown, field = 'body'): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(field, 'must be a JSON object');
  return v as Record<string, unknown>;
}
