/**
 * Turns what a caller passes to `enqueue` into a NewJob, or refuses it with a
 * ValidationError naming the field. Nothing reaches the store unchecked.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { TYPE_PATTERN, DEFAULTS, type JobDefinition } from '../define.ts';
import { ValidationError } from '../errors.ts';
import type { Json, NewJob } from '../job.ts';

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

/** U+0000 and unpaired surrogates cannot be stored by PostgreSQL (text and jsonb); refuse them on every store alike. */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const storable = (s: string) => !UNSTORABLE.test(s);
/** An escaped U+0000 or lone surrogate in JSON text (an odd run of backslashes before the `u`). */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/;
const UNSTORABLE_MESSAGE = 'must not contain U+0000 or unpaired UTF-16 surrogates';
const text = (min: number, max: number) => z.string().min(min).max(max).refine(storable, UNSTORABLE_MESSAGE);

const optionsSchema = z
  .object({
    idempotencyKey: text(1, 255).optional(),
    runAt: z.union([z.date(), z.number().finite(), z.string().min(1)]).optional(),
    delayMs: z.number().int().nonnegative().max(10 * 365 * 24 * 3600_000).optional(),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    maxAttempts: z.number().int().min(1).max(10_000).optional(),
    queue: text(1, 128).optional(),
    parentId: z.string().regex(/^\d{1,15}$/, 'must be a job id').optional(),
    orderingKey: text(1, 255).optional(),
    orderingOnDead: z.enum(['wait', 'skip']).optional(),
    actor: text(1, 200).optional(),
    waitForRoomMs: z.number().int().nonnegative().max(3_600_000).optional(),
    tx: z
      .custom((v) => v == null || (typeof v === 'object' && typeof (v as { query?: unknown }).query === 'function'), {
        message: 'must be a node-postgres client inside your transaction',
      })
      .optional(),
  })
  .strict();

const NO_OPTIONS = optionsSchema.safeParse({});

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
    const issue = parsedOpts.error.issues[0];
    const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
    throw new ValidationError(`options.${field}`, issue.message);
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

/** The payload as stored: JSON-serializable, storable strings, within size and depth; its JSON text too. */
function checkPayload(payload: unknown, def: JobDefinition | undefined): { json: Json; text: string } {
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
    throw new ValidationError('options.runAt', 'must be a Date, epoch milliseconds or an ISO 8601 string');
  }
  return Math.floor(t);
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
