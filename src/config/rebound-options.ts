/**
 * `createRebound(options)` checked before anything opens: a mistyped key
 * (`job:` for `jobs:`) or a wrong value fails here with a ConfigError naming
 * the field, not later as a TypeError from deep inside.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import type { ReboundOptions } from '../rebound.ts';
import { durationMs, firstProblem, fn, intIn, queueName, timerMs } from './options.ts';

/** An object whose `names` are all functions. */
const withMethods = (names: string[], error: string) =>
  z.custom<object>((v) => typeof v === 'object' && v !== null && names.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'), { error });

const STORE = 'must be a store URL (sqlite:PATH or postgres://...) or a store object';
const METRICS = 'must be true, false or a prom-client Registry';
const DEFINITION = 'must be a defineJob(...) result';
const JOBS = 'must be an array of defineJob(...) results, or an object of job options keyed by type';

const reboundOptionsSchema = z
  .object({
    store: z.union([z.string().min(1, STORE), withMethods(['migrate', 'insertJobs', 'close'], STORE)], { error: STORE }).optional(),
    jobs: z
      .union(
        [
          z.array(z.object({ type: z.string({ error: DEFINITION }) }, { error: DEFINITION }).loose()),
          z.record(z.string(), z.object({}, { error: 'must be the options of defineJob, such as { handler }' }).loose()),
        ],
        { error: JOBS },
      )
      .optional(),
    logger: withMethods(['debug', 'info', 'warn', 'error', 'child'], 'must be a logger with debug, info, warn, error and child methods (pino is one)').optional(),
    now: fn.optional(),
    migrate: z.boolean().optional(),
    queues: z
      .record(queueName, z.object({ maxDepth: intIn(1, Number.MAX_SAFE_INTEGER, 'must be a positive integer').optional() }).strict(), {
        error: 'must be an object of queue limits keyed by queue name, such as { default: { maxDepth: 10000 } }',
      })
      .optional(),
    tracing: z.union([z.boolean(), z.object({ tracer: z.object({}).loose() }).strict()], { error: 'must be true, false or { tracer }' }).optional(),
    metrics: z.union([z.boolean(), withMethods(['registerMetric', 'metrics'], METRICS)], { error: METRICS }).optional(),
    audit: z
      .union([z.boolean(), z.object({ sealIntervalMs: timerMs(1).optional(), flushIntervalMs: timerMs(1).optional() }).strict()], {
        error: 'must be true, false or { sealIntervalMs, flushIntervalMs }',
      })
      .optional(),
    stats: z
      .union([z.boolean(), z.object({ flushIntervalMs: timerMs(1).optional(), retentionMs: durationMs.optional() }).strict()], {
        error: 'must be true, false or { flushIntervalMs, retentionMs }',
      })
      .optional(),
    jobLogs: z.boolean().optional(),
  } satisfies Record<keyof ReboundOptions, z.ZodType>)
  .strict();

const KNOWN = Object.keys(reboundOptionsSchema.shape);

export function checkReboundOptions(options: unknown): ReboundOptions {
  const parsed = reboundOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return options as ReboundOptions;
  const { field, message } = firstProblem(parsed.error, 'options', KNOWN);
  throw new ConfigError(`createRebound: ${field}: ${message}`);
}
