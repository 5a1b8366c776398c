/**
 * The `rebound start --demo` scenario: a stream of orders charged through a
 * payment service that has outages, and now and then a poison message that
 * can never succeed. Orders that fail during an outage wait in retry, some
 * run out of attempts and land in the dead letter queue, and once the
 * service is back they are redriven and complete; poison messages stay dead.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineJob, type JobDefinition } from '../define.ts';
import { PermanentError } from '../errors.ts';
import type { Rebound } from '../rebound.ts';
import { PaymentService } from './payment-service.ts';

export const DEMO_STORE = 'sqlite:.rebound/demo.db';

const payment = new PaymentService();

const order = z.object({ orderId: z.string(), amount: z.number().positive(), card: z.string(), email: z.string() });

export function demoJobs(): JobDefinition[] {
  return [
    defineJob('order.charge', {
      schema: order,
      retry: { maxAttempts: 4, backoff: 'exponential', baseMs: 1000, maxMs: 8000 },
      handler: async (p: z.infer<typeof order>, ctx) => {
        const charge = await ctx.once('charge', () => payment.charge(p.orderId, p.amount));
        return { ...charge, status: 'paid' };
      },
    }),
    defineJob('invoice.parse', {
      retry: { maxAttempts: 2, baseMs: 500 },
      handler: async (p: { raw: string }) => {
        try {
          return JSON.parse(p.raw);
        } catch (err) {
          throw new PermanentError(`cannot parse invoice: ${(err as Error).message}`, { code: 'bad_invoice' });
        }
      },
    }),
  ];
}

export async function startDemo(rebound: Rebound): Promise<{ stop(): Promise<void> }> {
  let n = 0;
  const orders = setInterval(() => {
    const count = 2 + Math.floor(Math.random() * 3);
    const items = Array.from({ length: count }, () => {
      const orderId = `o-${++n}`;
      return {
        type: 'order.charge',
        payload: { orderId, amount: Math.round(Math.random() * 20000) / 100 + 1, card: `4242 4242 4242 ${String(1000 + (n % 9000))}`, email: `buyer${n}@example.com` },
        opts: { idempotencyKey: `order-${orderId}-${randomUUID().slice(0, 4)}` },
      };
    });
    void rebound.enqueueMany(items).catch(() => {});
    if (Math.random() < 0.15) void rebound.enqueue('invoice.parse', { raw: `{"invoice": ${n},` }).catch(() => {});
    else if (Math.random() < 0.3) void rebound.enqueue('invoice.parse', { raw: `{"invoice": ${n}}` }).catch(() => {});
  }, 1000);
  // Once the payment service is back, orders that died in the outage go back to the queue.
  let wasHealthy = payment.healthy;
  const healer = setInterval(() => {
    const healthy = payment.healthy;
    if (healthy && !wasHealthy) void rebound.redrive({ type: 'order.charge' }, { actor: 'demo:auto-redrive' }).catch(() => {});
    wasHealthy = healthy;
  }, 1000);
  orders.unref();
  healer.unref();
  return {
    async stop() {
      clearInterval(orders);
      clearInterval(healer);
    },
  };
}
