// How an attempt's plugins nest (runtime/plugin.ts): the plugins that wrap it, in registration order
// (first outermost), and between them the error maps of those that do not, innermost first.
import { describe, expect, it } from 'vitest';
import { defineJob, type JobContext } from '../src/index.ts';
import type { Job } from '../src/job.ts';
import { mapHandlerError, wrapAttempt, type WorkerPlugin } from '../src/runtime/plugin.ts';

const job = { id: '1', type: 't', payload: {} } as unknown as Job;
const ctx = {} as JobContext;
const fails = defineJob('t', {
  handler: async () => {
    throw new Error('x');
  },
});

/** A plugin that does not wrap and names itself around the error's message. */
const mapper = (name: string): WorkerPlugin => ({
  name,
  wraps: () => false,
  wrap: () => Promise.reject(new Error(`${name}'s wrap must not run`)),
  mapError: (err) => new Error(`${name}(${(err as Error).message})`),
});

/** A plugin that wraps, notes the error it sees and names itself around it. */
const wrapper = (name: string, seen: string[]): WorkerPlugin => ({
  name,
  wrap: (next) =>
    next().catch((err: Error) => {
      seen.push(`${name} saw ${err.message}`);
      throw new Error(`${name}[${err.message}]`);
    }),
  mapError: () => new Error(`${name}'s mapError must not run where it wraps`),
});

const message = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => e.message);

describe('plugin nesting', () => {
  it('with no plugin wrapping, there is no run to call and the maps apply innermost first', () => {
    const plugins = [mapper('a'), mapper('b'), { name: 'plain' }];
    expect(wrapAttempt(plugins, ctx, job, fails)).toBeNull();
    expect((mapHandlerError(plugins, new Error('x'), job, fails) as Error).message).toBe('a(b(x))');
  });

  it('maps sit at their place between the wraps', async () => {
    const seen: string[] = [];
    const plugins = [mapper('a'), wrapper('W', seen), mapper('b'), mapper('c'), wrapper('V', seen), mapper('d')];
    const run = wrapAttempt(plugins, ctx, job, fails)!;
    expect(await message(run())).toBe('a(W[b(c(V[d(x)]))])');
    expect(seen).toEqual(['V saw d(x)', 'W saw b(c(V[d(x)]))']);
  });

  it('asks each plugin per attempt whether it wraps, and runs the handler once', async () => {
    let calls = 0;
    const counted = defineJob('t', { handler: async () => ++calls });
    const seen: string[] = [];
    const onlyForRetries: WorkerPlugin = { ...wrapper('R', seen), wraps: (j) => j.attempt > 1 };
    const first = wrapAttempt([onlyForRetries], ctx, { ...job, attempt: 1 }, counted);
    const retry = wrapAttempt([onlyForRetries], ctx, { ...job, attempt: 2 }, counted)!;
    expect(first).toBeNull();
    expect(await retry()).toBe(1);
    expect(calls).toBe(1);
  });
});
