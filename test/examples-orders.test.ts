/**
 * The order-processing example (examples/orders) on both stores: the happy
 * path walks the named states to Completed; a shipping failure releases the
 * inventory and refunds the card, in that order; a flaky charge is retried
 * without charging twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Job, type Rebound } from '../src/index.ts';
import { fakeServices, orderWorkflow, type FakeServicesOptions } from '../examples/orders/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

const order = { orderId: 'o-1', amount: 42, items: ['sku-1', 'sku-2'], address: '1 Main St', email: 'ada@example.com' };

describe.each(storeKinds)('order workflow example on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });
  const run = async (opts: FakeServicesOptions) => {
    const services = fakeServices(opts);
    const wf = orderWorkflow(services);
    // Fast retries for the test; the example's own policy waits longer.
    wf.retry = { ...wf.retry, baseMs: 5, jitter: 'none' };
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [wf] });
    const { id } = await rebound.enqueue('ProcessOrder', order, { idempotencyKey: 'order-o-1' });
    rebound.work({ pollIntervalMs: 10 });
    const job = (await waitFor(async () => {
      const j = await rebound.getJob(id);
      return j && ['completed', 'compensated', 'dead'].includes(j.state) ? j : null;
    })) as Job;
    return { job, services, wf: await rebound.workflow(id) };
  };

  it('charges, reserves, ships and notifies, moving through its states to Completed', async () => {
    const { job, services, wf } = await run({ flaky: { charge: 2 } });
    expect(job.state).toBe('completed');
    expect(job.result).toEqual({ orderId: 'o-1', chargeId: 'ch_o-1', reservationId: 'res_o-1', trackingId: 'trk_o-1' });
    expect(services.effects).toEqual([
      'charged o-1 42',
      'reserved sku-1,sku-2 for o-1',
      'shipped o-1 to 1 Main St',
      'mailed ada@example.com: order o-1 is on its way: trk_o-1',
    ]);
    expect(wf.state).toBe('Completed');
    expect(wf.steps.filter((s) => s.kind === 'transition').map((s) => s.name)).toEqual(['PaymentCharged', 'InventoryReserved', 'Shipped', 'Completed']);
    expect(wf.steps.find((s) => s.name === 'charge-card')?.attempts).toBe(3);
  });

  it('when shipping fails for good, releases the inventory then refunds the card, and ends compensated', async () => {
    const { job, services, wf } = await run({ failAt: 'ship' });
    expect(job.state).toBe('compensated');
    expect(services.effects).toEqual(['charged o-1 42', 'reserved sku-1,sku-2 for o-1', 'released res_o-1', 'refunded ch_o-1']);
    expect(wf.state).toBe('InventoryReserved');
    expect(wf.status).toBe('compensated');
  });
});
