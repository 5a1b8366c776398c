/**
 * A step that failed with a transient error puts the run to sleep until its retry, even when the run's own
 * code does not let the step's rejection through (Promise.allSettled, a catch-all): the run does not
 * complete while one of its steps waits for its retry, so every step still runs until it succeeds once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, RetryableError, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const MINUTE = 60_000;

describe.each(storeKinds)('a swallowed step retry on %s', (kind) => {
  let url: string;
  let ahead = 0;
  const clients: Rebound[] = [];
  const open = async (jobs: JobDefinition[]) => {
    const r = await createRebound({ store: url, jobs, now: () => Date.now() + ahead });
    clients.push(r);
    return r;
  };
  beforeEach(() => {
    url = freshStoreUrl(kind);
    ahead = 0;
  });
  afterEach(async () => {
    for (const r of clients.splice(0)) await r.close();
    await dropStore(url);
  });

  it('a run whose code settles its steps with Promise.allSettled does not complete while one of them waits for its retry', async () => {
    const calls: string[] = [];
    const wf = defineWorkflow('notify-both', {
      run: async (ctx) => {
        const outcomes = await Promise.allSettled([
          ctx.step('notify-a', (info) => {
            calls.push(`a${info.attempt}`);
            if (info.attempt === 1) throw new RetryableError('mail down', { retryAfterMs: 30 * MINUTE });
            return 'a-sent';
          }),
          ctx.step('notify-b', () => (calls.push('b'), 'b-sent')),
        ]);
        return outcomes.map((o) => o.status);
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('notify-both', {});
    r.work({ pollIntervalMs: 20 });
    const slept = await waitFor(async () => {
      const j = await r.getJob(id);
      return j && ['scheduled', 'completed'].includes(j.state) ? j : null;
    });
    expect(slept!.state).toBe('scheduled');
    expect((await r.workflow(id))!.status).toBe('running');

    ahead = 31 * MINUTE;
    const done = await waitFor(async () => ((await r.getJob(id))?.state === 'completed' ? r.getJob(id) : null));
    expect(done!.result).toEqual(['fulfilled', 'fulfilled']);
    expect(calls.sort()).toEqual(['a1', 'a2', 'b']);
  });
});
