/**
 * The coordinator's options (`rebound.coordination.start(opts)`), checked where given: a retention of
 * `Infinity` or `undefined` used to be taken, and then every prune pass failed on PostgreSQL (nothing was
 * pruned, keys and fire records neither) while SQLite silently kept that state forever.
 */
import { z } from 'zod';
import type { CoordinatorOptions } from '../coordination/coordinator.ts';
import { ValidationError } from '../errors.ts';
import { durationMs, firstProblem, intIn, retentionSchema, text, timerMs } from './options.ts';

const coordinatorOptionsSchema = z
  .object({
    lease: text(1, 200).optional(),
    holder: text(1, 200).optional(),
    // leaseMs and safetyMs are checked further by the elector (leaseMs >= 300, safetyMs < leaseMs / 2).
    leaseMs: timerMs(1).optional(),
    safetyMs: timerMs(0).optional(),
    tickMs: timerMs(1).optional(),
    misfireGraceMs: durationMs.optional(),
    pruneIntervalMs: timerMs(1).optional(),
    retention: retentionSchema.optional(),
    pruneBatchSize: intIn(1, 100_000, 'must be a whole number from 1 to 100000').optional(),
  } satisfies Record<keyof CoordinatorOptions, z.ZodType>)
  .strict();

const KNOWN = [...Object.keys(coordinatorOptionsSchema.shape), ...Object.keys(retentionSchema.shape).map((k) => `retention.${k}`)];

export function checkCoordinatorOptions(options: unknown): CoordinatorOptions {
  const parsed = coordinatorOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return (options ?? {}) as CoordinatorOptions;
  const { field, message } = firstProblem(parsed.error, 'options', KNOWN);
  throw new ValidationError(field, message);
}
