/**
 * Schedules: a cron pattern in a time zone that enqueues a job of one type at
 * every fire time. Defined in code with `defineSchedule`, or at run time
 * (CLI, API); both are stored. Planning which fire times to enqueue after a
 * pause or downtime (the misfire policy) lives here; the store makes each
 * fire time produce exactly one job.
 */
import { z } from 'zod';
import { TYPE_PATTERN, type JobDefinition } from '../define.ts';
import { checkPayload } from '../engine/enqueue-input.ts';
import { ValidationError } from '../errors.ts';
import type { Json } from '../job.ts';
import type { MisfirePolicy, ScheduleRecord, ScheduleSpec } from '../store/coordination.ts';
import { parseCron } from './cron.ts';

export type { MisfirePolicy } from '../store/coordination.ts';

export interface ScheduleOptions {
  /** Five fields (minute hour day-of-month month day-of-week) or six (seconds first). */
  cron: string;
  /** IANA time zone the pattern is read in (default UTC). */
  tz?: string;
  /** The job type to enqueue. */
  type: string;
  payload?: unknown;
  /** Fire times missed by more than the grace period (downtime): skip them, run once, or run up to N of them. Default 'once'. */
  misfire?: MisfirePolicy;
  /** Delay each job by a stable pseudo-random amount below this, to spread load. */
  jitterMs?: number;
}

export interface ScheduleDefinition extends ScheduleSpec {}

export const SCHEDULE_NAME = /^[A-Za-z0-9_.:\-/]{1,128}$/;

const optionsSchema = z
  .object({
    cron: z.string().min(1),
    tz: z.string().min(1).optional(),
    type: z.string().regex(TYPE_PATTERN, 'must be 1-128 letters, digits or _ . : - /'),
    payload: z.unknown().optional(),
    misfire: z
      .union([z.literal('skip'), z.literal('once'), z.object({ all: z.number().int().min(1).max(10_000) }).strict()])
      .optional(),
    jitterMs: z.number().int().nonnegative().max(24 * 3600_000).optional(),
  })
  .strict();

/** `def`, the job type's definition where this client knows it, checks the payload against its schema too. */
export function defineSchedule(name: string, options: ScheduleOptions, source: 'code' | 'runtime' = 'code', def?: JobDefinition): ScheduleDefinition {
  if (typeof name !== 'string' || !SCHEDULE_NAME.test(name)) {
    throw new ValidationError('name', `"${name}" must be 1-128 letters, digits or _ . : - /`);
  }
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
    throw new ValidationError(`defineSchedule("${name}").${field || 'options'}`, issue.message);
  }
  const o = parsed.data;
  const tz = o.tz ?? 'UTC';
  parseCron(o.cron, tz, `defineSchedule("${name}").cron`);
  let payload: Json;
  try {
    // What enqueue would refuse at every fire time is refused now: size, depth, unstorable text, the type's schema.
    payload = checkPayload(o.payload ?? null, def).json;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw new ValidationError(`defineSchedule("${name}").${err.field}`, err.message.slice(err.field.length + 2));
  }
  return { name, cron: o.cron.trim(), tz, type: o.type, payload, misfire: o.misfire ?? 'once', jitterMs: o.jitterMs ?? 0, source };
}

export interface FirePlan {
  /** Fire times to enqueue now, oldest first. */
  fire: number[];
  /** Missed fire times dropped by the misfire policy: exact up to MAX_COUNTED missed ones, a lower bound beyond. */
  skipped: number;
  /** The latest fire time considered (fired or skipped). */
  lastFireAt: number | null;
  /** The cursor after this pass: the first fire time after `now`. */
  nextFireAt: number | null;
}

/** How many missed fire times one pass counts before it stops (only their number is lost: a log line). */
const MAX_COUNTED = 1_000;

/**
 * The fire times due at `now` for a schedule whose cursor is `nextFireAt`:
 * those within `graceMs` of now always fire; older ones are misfires, handled
 * by the policy ('skip': none, 'once': the latest, { all: n }: the latest n).
 */
export function planFires(s: Pick<ScheduleRecord, 'cron' | 'tz' | 'misfire' | 'nextFireAt'>, now: number, graceMs: number): FirePlan {
  const cron = parseCron(s.cron, s.tz);
  const keep = s.misfire === 'skip' ? 0 : s.misfire === 'once' ? 1 : s.misfire.all;
  const cutoff = now - graceMs; // fire times before it are misfires
  let kept: number[] = [];
  let skipped = 0;
  let last: number | null = null;
  let t = s.nextFireAt;
  if (t != null && t < cutoff) {
    const missed = latestMissed(cron, t, cutoff, Math.max(keep, 1)); // the latest one, at least, for lastFireAt
    kept = keep === 0 ? [] : missed.latest;
    skipped = missed.count - kept.length;
    last = missed.latest.at(-1) ?? null;
    t = cron.next(cutoff - 1);
  }
  const onTime: number[] = [];
  for (; t != null && t <= now; t = cron.next(t)) onTime.push((last = t));
  return { fire: [...kept, ...onTime], skipped, lastFireAt: last, nextFireAt: t };
}

/**
 * The latest `n` fire times from `from` (the cursor, a fire time) to before
 * `before`, and how many there are. Searched backwards from `before` in
 * windows that double, each enumerated forwards, so a long outage of a
 * frequent schedule (a per-second one down for hours) costs about `n` steps,
 * not one per missed second. Counting stops at MAX_COUNTED once `n` are held:
 * the count is then a lower bound (`from` itself, at least, is uncounted).
 */
function latestMissed(cron: ReturnType<typeof parseCron>, from: number, before: number, n: number): { latest: number[]; count: number } {
  const windows: number[][] = []; // latest first
  let count = 0;
  let end = before;
  for (let span = 1000; end > from; span *= 2) {
    if (count >= n && count >= MAX_COUNTED) return { latest: windows.reverse().flat().slice(-n), count: count + 1 };
    const start = Math.max(from, end - span);
    const times: number[] = [];
    for (let t = start === from ? from : cron.next(start - 1); t != null && t < end; t = cron.next(t)) times.push(t);
    if (count < n) windows.push(times); // earlier windows are only counted once `n` are held
    count += times.length;
    end = start;
  }
  return { latest: windows.reverse().flat().slice(-n), count };
}

/** The first fire time after `now`, for a new or resumed schedule. */
export function firstFireAfter(s: Pick<ScheduleSpec, 'cron' | 'tz'>, now: number): number | null {
  return parseCron(s.cron, s.tz).next(now);
}

/** A stable delay in [0, jitterMs) for one fire time, so every instance would choose the same. */
export function jitterFor(name: string, fireAt: number, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  let h = 2166136261;
  for (const ch of `${name}@${fireAt}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return (h >>> 0) % jitterMs;
}

/** The idempotency key of the job of one fire time. */
export const fireKey = (name: string, fireAt: number) => `schedule:${name}:${new Date(fireAt).toISOString()}`;
