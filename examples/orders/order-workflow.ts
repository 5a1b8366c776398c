/**
 * ProcessOrder: charge the card, reserve the inventory, ship, notify, as a
 * durable workflow with named states. If shipping fails for good, the
 * reservation is released and the card refunded (in that order) and the run
 * ends `compensated`. A crash at any point resumes at the step that did not
 * finish; a finished step (the charge!) never runs twice.
 *
 *   import { orderWorkflow, fakeServices } from './examples/orders/index.ts';
 *   const rebound = await createRebound({ jobs: [orderWorkflow(fakeServices())] });
 *   await rebound.enqueue('ProcessOrder', order, { idempotencyKey: `order-${order.orderId}` });
 */
import { z } from 'zod';
import { defineWorkflow, type JobDefinition } from '../../src/index.ts';
import type { OrderServices } from './services.ts';

export const orderSchema = z.object({
  orderId: z.string().min(1),
  amount: z.number().positive(),
  items: z.array(z.string()).min(1),
  address: z.string().min(1),
  email: z.string().email(),
});
export type Order = z.infer<typeof orderSchema>;

/** The run's named states (a compensated run keeps the state it reached; its status says `compensated`). */
export const ORDER_STATES = {
  Pending: ['PaymentCharged'],
  PaymentCharged: ['InventoryReserved'],
  InventoryReserved: ['Shipped'],
  Shipped: ['Completed'],
  Completed: [],
};

export function orderWorkflow(services: OrderServices, opts: { type?: string } = {}): JobDefinition<Order> {
  return defineWorkflow<Order>(opts.type ?? 'ProcessOrder', {
    schema: orderSchema,
    version: 1,
    states: ORDER_STATES,
    retry: { maxAttempts: 4, backoff: 'exponential', baseMs: 200, maxMs: 5000, jitter: 'full' },
    run: async (ctx, order) => {
      const { chargeId } = await ctx.step('charge-card', ({ idempotencyKey }) => services.chargeCard(order, idempotencyKey), {
        compensate: ({ chargeId }, { idempotencyKey }) => services.refund(chargeId, idempotencyKey),
      });
      await ctx.transition('PaymentCharged');

      const { reservationId } = await ctx.step('reserve-inventory', ({ idempotencyKey }) => services.reserveInventory(order, idempotencyKey), {
        compensate: ({ reservationId }, { idempotencyKey }) => services.releaseInventory(reservationId, idempotencyKey),
      });
      await ctx.transition('InventoryReserved');

      const { trackingId } = await ctx.step('ship', ({ idempotencyKey }) => services.ship(order, idempotencyKey), { timeoutMs: 30_000 });
      await ctx.transition('Shipped');

      await ctx.step('notify', () => services.notify(order, `order ${order.orderId} is on its way: ${trackingId}`), {
        retry: { maxAttempts: 10 },
      });
      await ctx.transition('Completed');
      return { orderId: order.orderId, chargeId, reservationId, trackingId };
    },
  });
}
