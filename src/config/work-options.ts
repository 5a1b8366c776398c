/**
 * `rebound.work(options)` checked before a worker starts: a worker given
 * `concurrency: 0` or `queues: 'default'` would run nothing, and say nothing.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import type { WorkOptions } from '../runtime/worker.ts';
import { firstProblem, intIn, queueName, text, timerMs } from './options.ts';

const workOptionsSchema = z
  .object({
    concurrency: intIn(1, 10_000, 'must be an integer from 1 to 10000: the jobs this worker runs at once').optional(),
    queues: z
      .array(queueName, { error: 'must be an array of queue names, such as ["default"]' })
      .min(1, 'must name at least one queue; leave it out to serve every queue the job definitions name')
      .optional(),
    batchSize: intIn(1, 10_000, 'must be an integer from 1 to 10000: the most jobs claimed per round trip').optional(),
    pollIntervalMs: timerMs(1).optional(),
    rescueIntervalMs: timerMs(1).optional(),
    shutdownGraceMs: timerMs(0).optional(),
    drain: z.boolean().optional(),
    workerId: text(1, 200).optional(),
  } satisfies Record<keyof WorkOptions, z.ZodType>)
  .strict();

const KNOWN = Object.keys(workOptionsSchema.shape);

export function checkWorkOptions(options: unknown): WorkOptions {
  const parsed = workOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const { field, message } = firstProblem(parsed.error, 'options', KNOWN);
  throw new ValidationError(field, message);
}
