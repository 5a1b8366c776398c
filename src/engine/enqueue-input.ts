/**
 * Turns what a caller passes to `enqueue` into a NewJob, or refuses it with a
 * ValidationError naming the field. Nothing reaches the store unchecked.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { TYPE_PATTERN, DEFAULTS, type JobDefinition } from '../define.ts';
import { ValidationError } from '../errors.ts';
import { firstProblem, intIn, MAX_DURATION_MS, priority, queueName, text, UNSTORABLE_MESSAGE } from '../config/options.ts';
import type { Json, NewJob } from '../job.ts';
import { UNSTORABLE_ESCAPE } from './stored-json.ts';

export interface EnqueueOptions {
  idempotencyKey?: string;
  runAt?: Date | number | string;
  delayMs?: number;
  priority?: number;
  maxAttempts?: number;
  queue?: string;
  parentId?: string;
  /** Jobs with the same ordering key run one at a time, in the order they were enqueued. */
  orderingKey?: string;
  /** If this job dies: 'wait' (default: later jobs of its key wait until it is redriven or cancelled) or 'skip'. */
  orderingOnDead?: 'wait' | 'skip';
  /** Who submits the job, for the audit trail (default 'library'). */
  actor?: string;
  /** A node-postgres client inside the caller's transaction: the job commits or rolls back with it. */
  tx?: unknown;
  /** When the queue is at its maximum depth, wait up to this long for room instead of failing at once with QueueFullError. */
  waitForRoomMs?: number;
}

export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Deeper payloads are refused: stores and JSON code paths recurse per level. */
export const MAX_PAYLOAD_DEPTH = 64;

/** A date, or a date and time with its zone (Z or an offset): Date.parse alone takes "5" for 2001-05-01, and a zoneless time as local. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;
const RUN_AT_MESSAGE = 'must be a Date, epoch milliseconds or an ISO 8601 date-time with its zone, such as 2030-01-31T09:00:00Z';

const optionsSchema = z
  .object({
    idempotencyKey: text(1, 255).optional(),
    runAt: z.union([z.date(), z.number().finite(), z.string().regex(ISO_8601, RUN_AT_MESSAGE)], { error: RUN_AT_MESSAGE }).optional(),
    delayMs: z.number().int().nonnegative().max(MAX_DURATION_MS).optional(),
    priority: priority.optional(),
    maxAttempts: z.number().int().min(1).max(10_000).optional(),
    queue: queueName.optional(),
    parentId: z.string().regex(/^\d{1,15}$/, 'must be a job id').optional(),
    orderingKey: text(1, 255).optional(),
    orderingOnDead: z.enum(['wait', 'skip']).optional(),
    actor: text(1, 200).optional(),
    waitForRoomMs: intIn(0, 3_600_000, 'must be whole milliseconds from 0 to 3600000 (an hour)').optional(),
    tx: z
      .custom((v) => v == null || (typeof v === 'object' && typeof (v as { query?: unknown }).query === 'function'), {
        message: 'must be a node-postgres client inside your transaction',
      })
      .optional(),
  })
  .strict();

const NO_OPTIONS = optionsSchema.safeParse({});
/** The names of enqueue's options (an enqueueMany item that puts one beside `opts` is refused). */
export const OPTION_NAMES = Object.keys(optionsSchema.shape);

/** What `enqueueMany(items, opts)` takes as its second argument: the options that apply to the whole batch. */
export interface EnqueueManyOptions {
  tx?: unknown;
  waitForRoomMs?: number;
}

const manyOptionsSchema = optionsSchema.pick({ tx: true, waitForRoomMs: true });

export function checkManyOptions(opts: unknown): EnqueueManyOptions {
  const parsed = manyOptionsSchema.safeParse(opts ?? {});
  if (parsed.success) return opts ?? {};
  const { field, message } = firstProblem(parsed.error, 'options', Object.keys(manyOptionsSchema.shape));
  const unknown = parsed.error.issues[0].code === 'unrecognized_keys';
  throw new ValidationError(field, unknown ? `${message}; an item's own options go in its opts` : message);
}

export function buildNewJob(
  type: unknown,
  payload: unknown,
  opts: unknown,
  def: JobDefinition | undefined,
  now: number,
): NewJob {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new ValidationError('type', 'must be 1-128 letters, digits or _ . : - / (the name given to defineJob)');
  }
  // Most enqueues give no options: skip the schema for them.
  const parsedOpts = opts == null ? NO_OPTIONS : optionsSchema.safeParse(opts);
  if (!parsedOpts.success) {
    // An unknown option names the nearest known one (`idempotencykey`: did you mean idempotencyKey?), as work() does.
    const { field, message } = firstProblem(parsedOpts.error, 'options', OPTION_NAMES);
    throw new ValidationError(field, message);
  }
  const o = parsedOpts.data;
  if (o.runAt !== undefined && o.delayMs !== undefined) {
    throw new ValidationError('options.runAt', 'give either runAt or delayMs, not both');
  }
  if (o.orderingOnDead !== undefined && o.orderingKey === undefined) {
    throw new ValidationError('options.orderingOnDead', 'applies only with an orderingKey');
  }
  const { json: checked, text } = checkPayload(payload, def);
  const runAt = o.runAt !== undefined ? toTime(o.runAt) : now + (o.delayMs ?? 0);
  return {
    type,
    queue: o.queue ?? def?.queue ?? DEFAULTS.queue,
    payload: checked,
    payloadText: text,
    payloadHash: payloadHash(type, checked, text),
    priority: o.priority ?? def?.priority ?? DEFAULTS.priority,
    runAt,
    maxAttempts: o.maxAttempts ?? def?.retry.maxAttempts ?? 5,
    idempotencyKey: o.idempotencyKey ?? null,
    keyTtlMs: def?.keyTtlMs ?? DEFAULTS.keyTtlMs,
    parentId: o.parentId ?? null,
    ...(o.orderingKey !== undefined && { orderingKey: o.orderingKey, orderingOnDead: o.orderingOnDead ?? 'wait' }),
  };
}

/**
 * A job built at `builtAt`, as built at `now`: its default or `delayMs` run time counts from `now`; a given
 * `runAt` stays. An enqueue that waits for room in a bounded queue is checked before the wait (bad input
 * fails at once) and timed after it, so a delay does not shrink by the wait.
 */
export function retimeNewJob(job: NewJob, opts: unknown, builtAt: number, now: number): NewJob {
  if (now === builtAt || (opts as { runAt?: unknown } | null | undefined)?.runAt !== undefined) return job;
  return { ...job, runAt: job.runAt + (now - builtAt) };
}

/**
 * Two items of one batch under one idempotency key must carry the same job: otherwise the store would keep
 * the first and, having stored the rest of the batch, refuse the second. Refused here, before anything is stored.
 */
export function checkBatchKeys(jobs: NewJob[]): void {
  const firstWith = new Map<string, number>();
  jobs.forEach((job, i) => {
    if (job.idempotencyKey == null) return;
    const first = firstWith.get(job.idempotencyKey);
    if (first === undefined) firstWith.set(job.idempotencyKey, i);
    else if (jobs[first].payloadHash !== job.payloadHash) {
      throw new ValidationError(
        `items[${i}].opts.idempotencyKey`,
        `"${job.idempotencyKey}" is also the key of items[${first}], which has another type or payload; one key names one job: give each its own key`,
      );
    }
  });
}

/** The payload as stored: JSON-serializable, storable strings, within size and depth; its JSON text too. */
export function checkPayload(payload: unknown, def: JobDefinition | undefined): { json: Json; text: string } {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload === undefined ? null : payload);
  } catch (err) {
    throw new ValidationError('payload', `must be JSON-serializable (${(err as Error).message})`);
  }
  if (text === undefined) throw new ValidationError('payload', 'must be JSON-serializable');
  // JSON.stringify writes U+0000 and lone surrogates (in keys and values) as \u escapes, and nothing else as those.
  if (text.includes('\\u') && UNSTORABLE_ESCAPE.test(text)) throw new ValidationError('payload', `strings ${UNSTORABLE_MESSAGE}`);
  if (text.length > MAX_PAYLOAD_BYTES / 3 && Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new ValidationError('payload', `is larger than ${MAX_PAYLOAD_BYTES} bytes; store large data elsewhere and enqueue a reference`);
  }
  const json = JSON.parse(text) as Json;
  if (depthOf(json) > MAX_PAYLOAD_DEPTH) throw new ValidationError('payload', `nests deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  if (!def?.schema) return { json, text };
  const result = def.schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.map(String).join('.');
    throw new ValidationError(path ? `payload.${path}` : 'payload', issue.message);
  }
  return { json, text };
}

/** Nesting depth of arrays and objects, without recursion. */
function depthOf(v: Json): number {
  let max = 0;
  const stack: [Json, number][] = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    max = Math.max(max, d + 1);
    if (max > MAX_PAYLOAD_DEPTH) return max;
    for (const child of Array.isArray(x) ? x : Object.values(x)) stack.push([child, d + 1]);
  }
  return max;
}

function toTime(v: Date | number | string): number {
  const t = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  // The range of a JavaScript Date: beyond it a time cannot be shown, nor stored as epoch milliseconds everywhere.
  if (!Number.isFinite(t) || Math.abs(t) > 8.64e15) {
    throw new ValidationError('options.runAt', RUN_AT_MESSAGE);
  }
  if (typeof v === 'string' && !isCalendarDay(v)) {
    throw new ValidationError('options.runAt', `${v.slice(0, 10)} is not a day of the calendar (Date.parse would take 2030-02-31 for March 3)`);
  }
  return Math.floor(t);
}

/** Whether an ISO 8601 string's date names a real day: Date.parse rolls a day past its month's end into the next. */
function isCalendarDay(iso: string): boolean {
  const [y, m, d] = iso.slice(0, 10).split('-').map(Number);
  const day = new Date(0);
  day.setUTCFullYear(y, m - 1, d);
  return day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

/** Same type and same payload (whatever the key order) give the same hash. */
export function payloadHash(type: string, payload: Json, text?: string): string {
  const canonical = text !== undefined && keysSorted(payload) ? text : canonicalJson(payload);
  // crypto.hash: one call, about a quarter of the time of a createHash object for a small payload.
  return hash('sha256', `${type}\0${canonical}`);
}

/** JSON with every object's keys sorted: the same text for the same value, whatever the key order. */
export function canonicalJson(v: Json): string {
  return keysSorted(v) ? JSON.stringify(v) : sortedJson(v);
}

function sortedJson(v: Json): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(v[k] as Json)}`).join(',')}}`;
}

/** Whether every object's keys are in sorted order already, so that JSON.stringify is canonical. */
function keysSorted(v: Json): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every(keysSorted);
  let prev: string | null = null;
  for (const k in v) {
    if (prev !== null && !(prev < k)) return false;
    if (!keysSorted(v[k] as Json)) return false;
    prev = k;
  }
  return true;
}
