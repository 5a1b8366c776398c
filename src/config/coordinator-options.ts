/**
 * The coordinator's options (`rebound.coordination.start(opts)`), checked where given: a retention of
 * `Infinity` or `undefined` used to be taken, and then every prune pass failed on PostgreSQL (nothing was
 * pruned, keys and fire records neither) while SQLite silently kept that state forever.
 */
import { z } from 'zod';
import type { CoordinatorOptions } from '../coordination/coordinator.ts';
import { DEFAULT_LEASE_MS } from '../coordination/leader.ts';
import { ValidationError } from '../errors.ts';
import { durationMs, firstProblem, intIn, MAX_DURATION_MS, retentionSchema, text, timerMs } from './options.ts';

/** A minute at least: the minute being written, and a seal interval, are never pruned from under their writer. */
const visibilityRetention = (hint: string) =>
  intIn(60_000, MAX_DURATION_MS, `must be whole milliseconds from 60000 (a minute) to ${MAX_DURATION_MS} (ten years)${hint}`);

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
    auditRetentionMs: visibilityRetention('; leave it out to keep the audit trail forever').optional(),
    statsRetentionMs: visibilityRetention(' (the default is 31 days, the longest /api/stats window)').optional(),
  } satisfies Record<keyof CoordinatorOptions, z.ZodType>)
  .strict();

/** A fire time later than this behind now is a misfire (`misfireGraceMs`). */
export const DEFAULT_MISFIRE_GRACE_MS = 60_000;
/** How often the leader looks for due fire times at most (`tickMs`). */
export const DEFAULT_TICK_MS = 1000;
/** The longest leaseMs that the default grace and tick allow: failoverMs(44_250, 1000) is 60_000 (the CLI sets neither). */
export const MAX_DEFAULT_LEASE_MS = 44_250;

const KNOWN = [...Object.keys(coordinatorOptionsSchema.shape), ...Object.keys(retentionSchema.shape).map((k) => `retention.${k}`)];

export function checkCoordinatorOptions(options: unknown): CoordinatorOptions {
  const parsed = coordinatorOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const { field, message } = firstProblem(parsed.error, 'options', KNOWN);
    throw new ValidationError(field, message);
  }
  checkGraceCoversFailover(parsed.data);
  return (options ?? {}) as CoordinatorOptions;
}

/**
 * How late the next leader may fire after a leader dies: its lease runs out `leaseMs` after its last renewal, a
 * follower tries to take it every third of `leaseMs` (so up to that long after it ran out), and the new leader's
 * first fire pass comes within `tickMs`. A grace shorter than that would turn the on-time fires of a failover
 * into misfires (skipped under `misfire: 'skip'`), so it is refused rather than left to surprise.
 */
function failoverMs(leaseMs: number, tickMs: number): number {
  return leaseMs + Math.max(10, Math.floor(leaseMs / 3)) + tickMs;
}

function checkGraceCoversFailover(o: { leaseMs?: number; tickMs?: number; misfireGraceMs?: number }): void {
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const graceMs = o.misfireGraceMs ?? DEFAULT_MISFIRE_GRACE_MS;
  const needed = failoverMs(leaseMs, o.tickMs ?? DEFAULT_TICK_MS);
  if (graceMs >= needed) return;
  throw new ValidationError(
    'options.misfireGraceMs',
    `is ${graceMs} ms, shorter than a leader failover can take (${needed} ms: leaseMs ${leaseMs}, a third of it between a follower's tries, and tickMs): ` +
      `its on-time fires would be misfires; raise misfireGraceMs to at least ${needed} or lower leaseMs`,
  );
}
