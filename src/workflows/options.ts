/**
 * The options of `ctx.step` and `ctx.waitFor`, checked like defineJob's: an
 * unknown key is refused with the nearest known name, numbers must be in bounds,
 * and the ValidationError names the field (`step("charge").retry.maxAttemps`).
 */
import { z } from 'zod';
import { durationMs, firstProblem, fn, retrySchema, timerMs } from '../config/options.ts';
import { ValidationError } from '../errors.ts';

const breaker = z.custom<unknown>(
  (v) => (typeof v === 'string' && v.length > 0) || (typeof v === 'object' && v !== null && typeof (v as { run?: unknown }).run === 'function'),
  'must be a breaker name, or a guard with a run(fn) method',
);

const stepSchema = z
  .object({
    retry: retrySchema.optional(),
    // One attempt is bounded by a Node timer.
    timeoutMs: timerMs(1).nullable().optional(),
    breaker: breaker.optional(),
    compensate: fn.optional(),
  })
  .strict();

const waitSchema = z.object({ timeoutMs: durationMs.optional() }).strict();

const known = (schema: z.ZodObject, nested: Record<string, z.ZodObject> = {}) => [
  ...Object.keys(schema.shape),
  ...Object.entries(nested).flatMap(([key, s]) => Object.keys(s.shape).map((k) => `${key}.${k}`)),
];
const STEP_OPTIONS = known(stepSchema, { retry: retrySchema });
const WAIT_OPTIONS = known(waitSchema);

function check(schema: z.ZodType, opts: unknown, root: string, names: string[]): void {
  if (opts === undefined) return;
  const parsed = schema.safeParse(opts);
  if (parsed.success) return;
  const { field, message } = firstProblem(parsed.error, root, names);
  throw new ValidationError(field, message);
}

export const checkStepOptions = (name: string, opts: unknown) => check(stepSchema, opts, `step(${JSON.stringify(name)})`, STEP_OPTIONS);
export const checkWaitOptions = (name: string, opts: unknown) => check(waitSchema, opts, `waitFor(${JSON.stringify(name)})`, WAIT_OPTIONS);

// Values are checked by the enqueue; here only which options a child may take from its parent's code.
const spawnSchema = z
  .object({ queue: z.unknown(), priority: z.unknown(), maxAttempts: z.unknown(), delayMs: z.unknown(), orderingKey: z.unknown() })
  .partial()
  .strict();
const SPAWN_OPTIONS = known(spawnSchema);
// A child's key comes from the run and its position (a replay must find the same child), its parent is the
// workflow, and it is enqueued on the client's own connection (one the caller rolls back would lose the child).
const SET_BY_SPAWN = ['idempotencyKey', 'parentId'];

export function checkSpawnOptions(type: string, opts: unknown): void {
  const root = `spawn(${JSON.stringify(type)}).opts`;
  if (opts == null) return;
  const parsed = spawnSchema.safeParse(opts);
  if (parsed.success) return;
  const { field, message } = firstProblem(parsed.error, root, SPAWN_OPTIONS);
  const key = field.slice(root.length + 1);
  if (SET_BY_SPAWN.includes(key)) {
    throw new ValidationError(field, 'is set by ctx.spawn (the key from the run and the position, the parent the workflow); remove it');
  }
  throw new ValidationError(field, message);
}
