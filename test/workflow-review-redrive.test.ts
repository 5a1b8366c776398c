/**
 * A redrive continues a failed run: the step that failed it gets a fresh budget, and every other position
 * stays as recorded. A step whose failure the run's code caught (it took another path, such as a fallback
 * payment) is a finished position: a redrive does not run it again, which would take both paths.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineWorkflow, PermanentError, StepFailedError, type Job, type JobDefinition, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

describe.each(storeKinds)('redriving a failed run on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const open = async (jobs: JobDefinition[]) => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs });
    rebound.work({ pollIntervalMs: 20 });
    return rebound;
  };
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const finished = (id: string) =>
    waitFor(async () => {
      const j = await rebound.getJob(id);
      return j && ['completed', 'dead', 'cancelled', 'compensated'].includes(j.state) ? j : null;
    }) as Promise<Job>;

  it('a step failure the run caught and took another path for is not run again by a redrive; the step that failed the run is', async () => {
    const calls: string[] = [];
    let carrierDown = true;
    const wf = defineWorkflow('pay-and-ship', {
      retry: { maxAttempts: 1 },
      run: async (ctx) => {
        let paid: string;
        try {
          paid = await ctx.step('card', () => {
            calls.push('card');
            if (calls.filter((c) => c === 'card').length === 1) throw new PermanentError('card declined');
            return 'card';
          });
        } catch (err) {
          if (!(err instanceof StepFailedError)) throw err;
          paid = await ctx.step('paypal', () => (calls.push('paypal'), 'paypal'));
        }
        const shipped = await ctx.step('ship', () => {
          calls.push('ship');
          if (carrierDown) throw new PermanentError('no carrier');
          return 'shipped';
        });
        return { paid, shipped };
      },
    });
    const r = await open([wf]);
    const { id } = await r.enqueue('pay-and-ship', {});
    expect(await finished(id)).toMatchObject({ state: 'dead', deadReason: 'permanent' });
    expect(calls).toEqual(['card', 'paypal', 'ship']);

    carrierDown = false;
    await r.redrive({ ids: [id] });
    const done = await waitFor(async () => ((await r.getJob(id))?.state === 'completed' ? r.getJob(id) : null));
    expect(done!.result).toEqual({ paid: 'paypal', shipped: 'shipped' });
    // The card was not charged again: the run had already paid by PayPal.
    expect(calls).toEqual(['card', 'paypal', 'ship', 'ship']);
    expect((await r.workflow(id))!.steps.map((s) => [s.name, s.status])).toEqual([
      ['card', 'failed'],
      ['paypal', 'completed'],
      ['ship', 'completed'],
    ]);
  });
});
