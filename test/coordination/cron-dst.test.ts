/**
 * Cron fire times across real daylight-saving transitions, with an injected
 * clock: a local time skipped by spring-forward fires once at the next valid
 * instant; a local time repeated by fall-back fires once.
 */
import { describe, expect, it } from 'vitest';
import { parseCron } from '../../src/coordination/cron.ts';
import { planFires } from '../../src/coordination/schedules.ts';
import { ValidationError } from '../../src/errors.ts';

/** The fire instants (ISO, UTC) after `from`, `n` of them. */
function fires(pattern: string, tz: string, from: string, n: number): string[] {
  const cron = parseCron(pattern, tz);
  const out: string[] = [];
  let t = Date.parse(from);
  for (let i = 0; i < n; i++) {
    t = cron.next(t)!;
    out.push(new Date(t).toISOString());
  }
  return out;
}

describe('cron in IANA time zones across DST', () => {
  it('America/New_York spring-forward: 02:30 does not exist on 2026-03-08 and fires once at 03:00 EDT', () => {
    expect(fires('30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', 3)).toEqual([
      '2026-03-08T07:00:00.000Z', // 03:00 EDT, the first valid instant after the gap
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ]);
  });

  it('America/New_York spring-forward: an hourly schedule has one fire at 03:00 for the skipped 02:00 and its own 03:00', () => {
    expect(fires('0 * * * *', 'America/New_York', '2026-03-08T05:30:00Z', 3)).toEqual([
      '2026-03-08T06:00:00.000Z', // 01:00 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT (02:00 skipped, merged)
      '2026-03-08T08:00:00.000Z', // 04:00 EDT
    ]);
  });

  it('America/New_York fall-back: 01:30 happens twice on 2026-11-01 and fires once, at its first occurrence', () => {
    expect(fires('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', 2)).toEqual([
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-02T06:30:00.000Z', // 01:30 EST the next day
    ]);
  });

  it('America/New_York fall-back: an every-30-minutes schedule does not run the repeated hour twice', () => {
    expect(fires('*/30 * * * *', 'America/New_York', '2026-11-01T04:40:00Z', 4)).toEqual([
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T07:00:00.000Z', // 02:00 EST (01:00 and 01:30 EST are repeats)
      '2026-11-01T07:30:00.000Z',
    ]);
  });

  it('Europe/London: 01:30 is skipped on 2026-03-29 (fires at 02:00 BST) and repeated on 2026-10-25 (fires once)', () => {
    expect(fires('30 1 * * *', 'Europe/London', '2026-03-28T12:00:00Z', 2)).toEqual([
      '2026-03-29T01:00:00.000Z', // 02:00 BST
      '2026-03-30T00:30:00.000Z', // 01:30 BST
    ]);
    expect(fires('30 1 * * *', 'Europe/London', '2026-10-24T12:00:00Z', 2)).toEqual([
      '2026-10-25T00:30:00.000Z', // 01:30 BST, the first of two
      '2026-10-26T01:30:00.000Z', // 01:30 GMT
    ]);
  });

  it('Australia/Lord_Howe (30-minute shift): 02:00 is skipped on 2026-10-04 and fires at 02:30 +11', () => {
    expect(fires('0 * * * *', 'Australia/Lord_Howe', '2026-10-03T14:10:00Z', 3)).toEqual([
      '2026-10-03T14:30:00.000Z', // 01:00 +10:30
      '2026-10-03T15:30:00.000Z', // 02:30 +11, for the skipped 02:00
      '2026-10-03T16:00:00.000Z', // 03:00 +11
    ]);
  });

  it('Australia/Lord_Howe (30-minute shift): 01:30-01:59 repeat on 2026-04-05 and fire once', () => {
    expect(fires('*/15 * * * *', 'Australia/Lord_Howe', '2026-04-04T14:10:00Z', 5)).toEqual([
      '2026-04-04T14:15:00.000Z', // 01:15 +11
      '2026-04-04T14:30:00.000Z', // 01:30 +11
      '2026-04-04T14:45:00.000Z', // 01:45 +11
      '2026-04-04T15:30:00.000Z', // 02:00 +10:30 (the second 01:30 and 01:45 are repeats)
      '2026-04-04T15:45:00.000Z',
    ]);
  });

  it('seconds as a sixth field', () => {
    expect(fires('*/20 * * * * *', 'UTC', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
  });

  it('refuses a bad pattern or an unknown time zone with a ValidationError naming the field', () => {
    expect(() => parseCron('61 * * * *', 'UTC')).toThrow(ValidationError);
    expect(() => parseCron('* * *', 'UTC')).toThrow(/five fields/);
    expect(() => parseCron('* * * * *', 'Mars/Olympus')).toThrow(/IANA time zone/);
  });
});

describe('misfire policy after downtime', () => {
  const T = Date.parse('2026-01-01T00:00:00Z');
  const hourly = { cron: '0 * * * *', tz: 'UTC', nextFireAt: T };
  const now = T + 5 * 3600_000 + 10_000; // five hours late, 10 s after the 05:00 fire time

  it("'skip' drops missed fire times and fires only the one within the grace period", () => {
    const p = planFires({ ...hourly, misfire: 'skip' }, now, 60_000);
    expect(p.fire).toEqual([T + 5 * 3600_000]);
    expect(p.skipped).toBe(5);
    expect(p.nextFireAt).toBe(T + 6 * 3600_000);
  });

  it("'once' adds one catch-up run, for the latest missed fire time", () => {
    const p = planFires({ ...hourly, misfire: 'once' }, now, 60_000);
    expect(p.fire).toEqual([T + 4 * 3600_000, T + 5 * 3600_000]);
  });

  it('{ all: 3 } runs the latest three missed fire times', () => {
    const p = planFires({ ...hourly, misfire: { all: 3 } }, now, 60_000);
    expect(p.fire).toEqual([T + 2 * 3600_000, T + 3 * 3600_000, T + 4 * 3600_000, T + 5 * 3600_000]);
    expect(p.skipped).toBe(2);
  });

  it("after six hours down, a per-second schedule catches up the latest missed fire times, not ones from early in the outage", () => {
    const down = Date.parse('2026-05-01T00:00:01Z');
    const back = Date.parse('2026-05-01T06:00:00.500Z');
    const perSecond = { cron: '* * * * * *', tz: 'UTC', nextFireAt: down };
    const once = planFires({ ...perSecond, misfire: 'once' }, back, 60_000);
    expect(new Date(once.fire[0]).toISOString()).toBe('2026-05-01T05:59:00.000Z'); // the latest before the grace window
    expect(once.fire.length).toBe(1 + 60); // and the 60 on time, 05:59:01 to 06:00:00
    expect(once.lastFireAt).toBe(Date.parse('2026-05-01T06:00:00Z'));
    expect(once.nextFireAt).toBe(Date.parse('2026-05-01T06:00:01Z'));
    // 21 540 missed, one run: the count is not enumerated to the end, but is never more than were missed.
    expect(once.skipped).toBeGreaterThanOrEqual(1000);
    expect(once.skipped).toBeLessThanOrEqual(21_539);
    const all = planFires({ ...perSecond, misfire: { all: 5000 } }, back, 60_000);
    const missed = all.fire.slice(0, 5000);
    expect(missed.length).toBe(5000);
    expect(missed.every((t, i) => t === Date.parse('2026-05-01T05:59:00Z') - (4999 - i) * 1000)).toBe(true);
    expect(all.fire.length).toBe(5000 + 60);
  });

  it('counts every missed fire time of an outage with fewer than a thousand', () => {
    const T = Date.parse('2026-01-01T00:00:00Z');
    const p = planFires({ cron: '*/10 * * * * *', tz: 'UTC', nextFireAt: T, misfire: 'once' }, T + 2 * 3600_000, 60_000);
    expect(p.skipped).toBe(2 * 360 - 6 - 1); // 714 missed, the latest of them run
    expect(new Date(p.fire[0]).toISOString()).toBe('2026-01-01T01:58:50.000Z');
  });
});
