/**
 * Turns what a caller passes to `enqueue` into a NewJob, or refuses it with a
 * ValidationError naming the field. Nothing reaches the store unchecked.
 */
import { createHash } from 'node:crypto';
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
}

export const MAX_PAYLOAD_BYTES = 1024 * 1024;

const optionsSchema = z
  .object({
    idempotencyKey: z.string().min(1).max(255).optional(),
    runAt: z.union([z.date(), z.number().finite(), z.string().min(1)]).optional(),
    delayMs: z.number().int().nonnegative().max(10 * 365 * 24 * 3600_000).optional(),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    maxAttempts: z.number().int().min(1).max(10_000).optional(),
    queue: z.string().min(1).max(128).optional(),
    parentId: z.string().regex(/^\d+$/, 'must be a job id').optional(),
    orderingKey: z.string().min(1).max(255).optional(),
    orderingOnDead: z.enum(['wait', 'skip']).optional(),
    actor: z.string().min(1).max(200).optional(),
    tx: z.any().optional(),
  })
  .strict();

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
  const parsedOpts = optionsSchema.safeParse(opts ?? {});
  if (!parsedOpts.success) {
    const issue = parsedOpts.error.issues[0];
    const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
    throw new ValidationError(`options.${field}`, issue.message);
  }
  const o = parsedOpts.data;
  if (o.runAt !== undefined && o.delayMs !== undefined) {
    throw new ValidationError('options.runAt', 'give either runAt or delayMs, not both');
  }
  const checked = checkPayload(payload, def);
  const runAt = o.runAt !== undefined ? toTime(o.runAt) : now + (o.delayMs ?? 0);
  return {
    type,
    queue: o.queue ?? def?.queue ?? DEFAULTS.queue,
    payload: checked,
    payloadHash: payloadHash(type, checked),
    priority: o.priority ?? def?.priority ?? DEFAULTS.priority,
    runAt,
    maxAttempts: o.maxAttempts ?? def?.retry.maxAttempts ?? 5,
    idempotencyKey: o.idempotencyKey ?? null,
    keyTtlMs: def?.keyTtlMs ?? DEFAULTS.keyTtlMs,
    parentId: o.parentId ?? null,
    ...(o.orderingKey !== undefined && { orderingKey: o.orderingKey, orderingOnDead: o.orderingOnDead ?? 'wait' }),
  };
}

function checkPayload(payload: unknown, def: JobDefinition | undefined): Json {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload === undefined ? null : payload);
  } catch (err) {
    throw new ValidationError('payload', `must be JSON-serializable (${(err as Error).message})`);
  }
  if (text === undefined) throw new ValidationError('payload', 'must be JSON-serializable');
  if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new ValidationError('payload', `is larger than ${MAX_PAYLOAD_BYTES} bytes; store large data elsewhere and enqueue a reference`);
  }
  const json = JSON.parse(text) as Json;
  if (!def?.schema) return json;
  const result = def.schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.map(String).join('.');
    throw new ValidationError(path ? `payload.${path}` : 'payload', issue.message);
  }
  return json;
}

function toTime(v: Date | number | string): number {
  const t = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) throw new ValidationError('options.runAt', 'must be a Date, epoch milliseconds or an ISO 8601 string');
  return t;
}

/** Same type and same payload (whatever the key order) give the same hash. */
export function payloadHash(type: string, payload: Json): string {
  return createHash('sha256').update(type).update('\0').update(canonicalJson(payload)).digest('hex');
}

export function canonicalJson(v: Json): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k] as Json)}`).join(',')}}`;
}
