/**
 * A schedule's payload and a signal's payload pass the checks an enqueued
 * payload passes (size, depth, storable text, and for a schedule the job
 * type's schema), so a bad one is refused when given, not at every fire time
 * or as a database error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRebound, defineJob, defineSchedule, ValidationError, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds } from './helpers/stores.ts';

const T0 = Date.parse('2026-03-08T06:00:00Z');

const unstorable = { note: 'a\u0000b' };
const tooLarge = { blob: 'x'.repeat(1024 * 1024 + 1) };
const tooDeep = JSON.parse('['.repeat(65) + ']'.repeat(65));

describe.each(storeKinds)('payload checks on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  let clock = T0;
  const logged: { level: string; obj: unknown; msg?: string }[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (obj: unknown, msg?: string) => void logged.push({ level: 'warn', obj, msg }),
    error: (obj: unknown, msg?: string) => void logged.push({ level: 'error', obj, msg }),
    child: () => logger,
  };
  const open = async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({
      store: url,
      now: () => clock,
      logger,
      jobs: [defineJob('report', { schema: z.object({ day: z.string() }), handler: () => 'ok' })],
    });
  };
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
    clock = T0;
    logged.length = 0;
  });

  it.each([
    ['refused by the type schema', { day: 5 }, 'defineSchedule("nightly").payload.day'],
    ['with U+0000', { day: 'mon', ...unstorable }, 'defineSchedule("nightly").payload'],
    ['over 1 MiB', { day: 'mon', ...tooLarge }, 'defineSchedule("nightly").payload'],
    ['nested 65 deep', tooDeep, 'defineSchedule("nightly").payload'],
  ])('addSchedule refuses a payload %s, naming it, and stores no schedule', async (_what, payload, field) => {
    await open();
    const err = await rebound.coordination.addSchedule('nightly', { cron: '0 2 * * *', type: 'report', payload }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await rebound.coordination.listSchedules()).toEqual([]);
  });

  it('a schedule defined in code whose job is refused at its fire time logs an error naming the schedule', async () => {
    await open();
    // Defined without the client's definitions at hand, the type's schema is met only when it fires.
    rebound.coordination.define(defineSchedule('hourly', { cron: '0 * * * *', type: 'report', payload: { day: 5 } }));
    const c = rebound.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    await c.runOnce(); // stores the schedule
    clock = Date.parse('2026-03-08T07:00:00.500Z');
    await c.elector.runOnce(); // a new term: the first one's lease ran out in the hour
    expect((await c.runOnce()).fired).toEqual([]);
    expect(await rebound.countJobs()).toBe(0);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', obj: expect.objectContaining({ schedule: 'hourly' }) }));
    await c.stop();
  });

  it.each([
    ['with U+0000', unstorable],
    ['over 1 MiB', tooLarge],
    ['nested 65 deep', tooDeep],
  ])('signal refuses a payload %s with a ValidationError naming payload', async (_what, payload) => {
    await open();
    const { id } = await rebound.enqueue('report', { day: 'mon' });
    const err = await rebound.signal(id, 'approved', payload).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('payload');
  });
});
