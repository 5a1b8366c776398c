/**
 * Cron in any IANA time zone, with daylight-saving time handled one way,
 * deterministically:
 *
 * - A schedule names local wall-clock times (croner matches the pattern).
 * - A local time that exists once fires at that instant.
 * - A local time repeated by fall-back fires once, at its first occurrence.
 *   (This holds for interval patterns too: `*\/15 * * * *` does not run the
 *   repeated hour twice.)
 * - A local time skipped by spring-forward fires once, at the next valid
 *   instant: the first instant after the gap (03:00 in New York, 02:30 on
 *   Lord Howe Island). Several skipped times, or a skipped time and the
 *   pattern's own time at the end of the gap, land on the same instant and
 *   are one fire, because a fire is identified by its instant.
 *
 * croner does the pattern matching on naive local times (it runs in UTC, where
 * nothing is skipped or repeated); this module maps naive local times to
 * instants with the rules above. The mapping never goes backwards, so the next
 * fire after `t` is the first match whose instant is later than `t`.
 */
import { Cron } from 'croner';
import { ValidationError } from '../errors.ts';

const DAY = 86_400_000;

export interface CronSchedule {
  readonly pattern: string;
  readonly tz: string;
  /** The first fire instant strictly after `after` (epoch ms), or null when the pattern never fires again. */
  next(after: number): number | null;
}

export function parseCron(pattern: string, tz = 'UTC', field = 'cron'): CronSchedule {
  if (typeof pattern !== 'string' || pattern.trim().split(/\s+/).length < 5 || pattern.trim().split(/\s+/).length > 6) {
    throw new ValidationError(field, `"${pattern}" must have five fields (minute hour day month weekday) or six (second first)`);
  }
  checkTimeZone(tz);
  let cron: Cron;
  try {
    cron = new Cron(pattern.trim(), { timezone: 'UTC', paused: true, mode: '5-or-6-parts' });
  } catch (err) {
    throw new ValidationError(field, `"${pattern}" is not a valid cron pattern: ${(err as Error).message}`);
  }
  // Five or six fields have no year, so a pattern that matches no date from some year on matches none ever
  // (30 February, 31 April); stored, it would never fire and show no next fire time.
  if (!cron.nextRun(new Date(Date.UTC(2000, 0, 1)))) {
    throw new ValidationError(field, `"${pattern}" never fires: no date matches it (such as 30 February or 31 April)`);
  }
  const zone = new Zone(tz);
  return {
    pattern,
    tz,
    next(after: number): number | null {
      // Start just before the naive local time of `after`: matches at or before it map to instants at or before `after`.
      let naive = zone.naive(after) - 1000;
      for (let i = 0; i < 100_000; i++) {
        const match = cron.nextRun(new Date(naive));
        if (!match) return null;
        naive = match.getTime();
        const instant = zone.instant(naive);
        if (instant > after) return instant;
      }
      return null;
    },
  };
}

export function checkTimeZone(tz: string, field = 'tz'): void {
  try {
    if (typeof tz !== 'string' || !tz) throw new Error('empty');
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ValidationError(field, `"${tz}" is not an IANA time zone (for example UTC, Europe/London, America/New_York)`);
  }
}

/** Offsets and wall-clock times of one time zone, through Intl (no time zone data of our own). */
export class Zone {
  private readonly format: Intl.DateTimeFormat;

  constructor(readonly tz: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }

  /** The local wall-clock time at `instant`, as epoch ms of the same fields read as UTC. */
  naive(instant: number): number {
    const ms = ((instant % 1000) + 1000) % 1000;
    const p = Object.fromEntries(this.format.formatToParts(new Date(instant - ms)).map((x) => [x.type, x.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) + ms;
  }

  /** UTC offset in ms at `instant` (local = instant + offset). */
  offset(instant: number): number {
    return this.naive(instant) - instant;
  }

  /**
   * The instant of a naive local time: the only one, the first of two
   * (fall-back), or the first valid instant after the gap (spring-forward).
   */
  instant(naive: number): number {
    const offsets = new Set([this.offset(naive - DAY), this.offset(naive), this.offset(naive + DAY)]);
    const valid = [...offsets].map((o) => naive - o).filter((i) => this.naive(i) === naive);
    if (valid.length) return Math.min(...valid);
    // In a gap: the transition lies between the instant read with the later offset and the one read with the earlier.
    let lo = naive - Math.max(...offsets);
    let hi = naive - Math.min(...offsets);
    const before = this.offset(lo);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }
}
