/**
 * Checks what callers pass to look jobs up (ids, filters, dead-letter
 * selections) before it reaches a store, so hostile input gets a typed error
 * or "not found", never a database error.
 */
import { UNSTORABLE } from '../config/options.ts';
import { ValidationError } from '../errors.ts';
import { JOB_STATES, type JobFilter } from '../job.ts';
import type { Selection } from '../store/store.ts';

/** A job id as every store keeps it: a positive integer of at most 15 digits (below 2^53). */
export const isJobId = (id: unknown): id is string => typeof id === 'string' && /^\d{1,15}$/.test(id);

/** The job id a caller meant (a string or a safe integer), or null when it cannot name a job. */
export function jobIdOf(id: unknown): string | null {
  const s = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : id;
  return isJobId(s) ? s : null;
}

/** A printable form of whatever was passed as an id, for "job X does not exist". */
export function shownId(id: unknown): string {
  return typeof id === 'string' || typeof id === 'number' ? String(id).slice(0, 100) : `(${typeof id})`;
}

export const MAX_LIST_LIMIT = 100_000;

function checkText(field: string, v: unknown) {
  if (v === undefined) return;
  if (typeof v !== 'string' || v.length > 1000 || UNSTORABLE.test(v)) {
    throw new ValidationError(field, 'must be a string of at most 1000 characters, without U+0000 or unpaired surrogates');
  }
}

function checkIds(field: string, ids: unknown) {
  if (ids === undefined) return;
  if (!Array.isArray(ids) || ids.length > MAX_LIST_LIMIT || !ids.every(isJobId)) {
    throw new ValidationError(field, 'must be an array of job ids (digits)');
  }
}

/** Returns the filter when every field is of the right kind; else a ValidationError naming the field. */
export function checkFilter<F extends JobFilter>(filter: F | undefined): F {
  const f = (filter ?? {}) as F;
  if (typeof f !== 'object' || Array.isArray(f)) throw new ValidationError('filter', 'must be an object');
  checkIds('filter.ids', f.ids);
  if (f.state !== undefined && !JOB_STATES.includes(f.state)) {
    throw new ValidationError('filter.state', `must be one of ${JOB_STATES.join(', ')}`);
  }
  checkText('filter.type', f.type);
  checkText('filter.queue', f.queue);
  checkText('filter.fingerprint', f.fingerprint);
  if (f.beforeId !== undefined && !isJobId(f.beforeId)) throw new ValidationError('filter.beforeId', 'must be a job id (digits)');
  if (f.limit !== undefined && !(Number.isInteger(f.limit) && f.limit >= 1 && f.limit <= MAX_LIST_LIMIT)) {
    throw new ValidationError('filter.limit', `must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return f;
}

/** The fields of a dead-letter selection (whether it selects anything is the caller's check). */
export function checkSelectionFields(sel: Selection): void {
  checkIds('selection.ids', sel.ids);
  checkText('selection.type', sel.type);
  checkText('selection.fingerprint', sel.fingerprint);
  if (sel.all !== undefined && typeof sel.all !== 'boolean') throw new ValidationError('selection.all', 'must be true or false');
}
