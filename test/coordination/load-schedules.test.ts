/** Schedules exported by a jobs file, and defineSchedule's validation. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSchedules } from '../../src/coordination/load-schedules.ts';
import { defineSchedule, ValidationError } from '../../src/index.ts';

const FILE = fileURLToPath(new URL('../fixtures/schedule-jobs.ts', import.meta.url));

describe('schedules in code', () => {
  it('a jobs file exports schedules that the worker loads as code-defined schedules', async () => {
    const loaded = await loadSchedules(FILE);
    expect(loaded).toEqual([
      { name: 'nightly-report', cron: '30 2 * * *', tz: 'America/New_York', type: 'report', payload: { full: true }, misfire: 'once', jitterMs: 0, source: 'code' },
      { name: 'every-5s', cron: '*/5 * * * * *', tz: 'UTC', type: 'report', payload: null, misfire: { all: 3 }, jitterMs: 100, source: 'code' },
    ]);
  });

  it('defineSchedule refuses bad input with a ValidationError naming the field', () => {
    expect(() => defineSchedule('a b', { cron: '* * * * *', type: 'x' })).toThrow(/name: "a b"/);
    expect(() => defineSchedule('s', { cron: '* * * * *', type: 'x', misfire: 'always' as never })).toThrow(ValidationError);
    expect(() => defineSchedule('s', { cron: '* * * * *', type: 'x', extra: 1 } as never)).toThrow(/defineSchedule\("s"\)\.extra/);
    expect(() => defineSchedule('s', { cron: '* * * * *', type: 'x', tz: 'Europe/Atlantis' })).toThrow(/IANA time zone/);
  });
});
