/**
 * `superviseWorkers(options)` checked where given, as `work()`'s options are: a zero restart delay (a crash
 * loop restarting at once), a negative grace or an unknown key fails here with a ValidationError naming the
 * field, not later as a tight loop or a silently different default.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import type { SupervisorOptions } from '../runtime/supervisor.ts';
import { firstProblem, intIn, queueName, timerMs } from './options.ts';

const supervisorOptionsSchema = z
  .object({
    jobsFile: z.string({ error: 'give the jobs file each worker process loads' }).min(1, { error: 'give the jobs file each worker process loads' }),
    processes: intIn(1, 256),
    store: z.string().min(1).optional(),
    concurrency: intIn(1, 10_000).optional(),
    queues: z.array(queueName, { error: 'must be an array of queue names' }).min(1, { error: 'give at least one queue' }).optional(),
    drain: z.boolean().optional(),
    workerArgs: z.array(z.string()).optional(),
    heartbeatIntervalMs: timerMs(10).optional(),
    livenessTimeoutMs: timerMs(10).optional(),
    startupTimeoutMs: timerMs(10).optional(),
    timeoutGraceMs: timerMs(0).optional(),
    restartBaseMs: timerMs(10).optional(),
    restartMaxMs: timerMs(10).optional(),
    stableAfterMs: timerMs(0).optional(),
    crashLoop: z.object({ crashes: intIn(1, 10_000), withinMs: timerMs(1) }).strict().optional(),
    stopTimeoutMs: timerMs(0).optional(),
    events: z.object({}).loose().optional(),
    logger: z.object({}).loose().optional(),
    env: z.record(z.string(), z.string()).optional(),
    stdio: z.enum(['inherit', 'ignore']).optional(),
  } satisfies Record<keyof SupervisorOptions, z.ZodType>)
  .strict();

const KNOWN = [...Object.keys(supervisorOptionsSchema.shape), 'crashLoop.crashes', 'crashLoop.withinMs'];

export function checkSupervisorOptions(options: unknown): SupervisorOptions {
  const parsed = supervisorOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const { field, message } = firstProblem(parsed.error, '', KNOWN);
    throw new ValidationError(field, message);
  }
  const o = options as SupervisorOptions;
  if (o.restartBaseMs != null && o.restartMaxMs != null && o.restartMaxMs < o.restartBaseMs) {
    throw new ValidationError('restartMaxMs', `must be at least restartBaseMs (${o.restartBaseMs} ms)`);
  }
  return o;
}
