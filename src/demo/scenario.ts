/**
 * The `rebound start --demo` scenario, shown live on the dashboard:
 * - order workflows (reserve stock, charge, confirm) whose charge step goes
 *   through the `payments` circuit breaker to a payment service with
 *   scheduled outages: the breaker opens, orders wait without using attempts,
 *   the breaker closes and they complete;
 * - payment captures (plain jobs guarded by the same breaker) that run out of
 *   attempts early in an outage, land in the dead letter queue, and are
 *   redriven on their own when the breaker closes;
 * - invoices that cannot be parsed: poison messages that stay dead.
 * Sensitive payload fields (card, email) are redacted for viewers.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineJob, type JobDefinition } from '../define.ts';
import { PermanentError } from '../errors.ts';
import type { Rebound } from '../rebound.ts';
import { defineWorkflow } from '../workflows/define-workflow.ts';
import { PaymentService } from './payment-service.ts';

export const DEMO_STORE = 'sqlite:.rebound/demo.db';

/** Up 45 s, down 20 s by default: long enough to watch the breaker open, probe and close. */
const payment = new PaymentService(Number(process.env.REBOUND_DEMO_UP_MS ?? 45_000), Number(process.env.REBOUND_DEMO_DOWN_MS ?? 20_000));

const PAYMENTS = { name: 'payments', consecutiveFailures: 8, minCalls: 10, failureRatio: 0.5, windowMs: 10_000, cooldownMs: 4000, maxCooldownMs: 12_000 };

const order = z.object({ orderId: z.string(), amount: z.number().positive(), card: z.string(), email: z.string() });
type Order = z.infer<typeof order>;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function demoJobs(): JobDefinition[] {
  return [
    defineWorkflow('order.checkout', {
      schema: order,
      redact: ['card', 'email'],
      breaker: PAYMENTS,
      run: async (ctx, o: Order) => {
        const reservation = await ctx.step('reserve-stock', async () => {
          await pause(20 + Math.random() * 40);
          return { reservationId: `r-${o.orderId}` };
        });
        const charge = await ctx.step('charge', () => payment.charge(o.orderId, o.amount), {
          breaker: 'payments',
          retry: { maxAttempts: 30, backoff: 'exponential', baseMs: 500, maxMs: 5000 },
        });
        await ctx.step('confirm', async () => {
          await pause(10 + Math.random() * 30);
          return { emailed: true };
        });
        return { ...reservation, ...charge, status: 'confirmed' };
      },
    }),
    defineJob('payment.capture', {
      redact: ['card'],
      breaker: PAYMENTS,
      retry: { maxAttempts: 2, backoff: 'fixed', baseMs: 300, jitter: 'none' },
      handler: async (p: { orderId: string; amount: number; card: string }) => payment.charge(`cap-${p.orderId}`, p.amount),
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
  const card = () => `4242 4242 4242 ${String(1000 + (n % 9000))}`;
  const feed = setInterval(() => {
    const items = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => {
      const orderId = `o-${++n}`;
      return {
        type: 'order.checkout',
        payload: { orderId, amount: Math.round(Math.random() * 20000) / 100 + 1, card: card(), email: `buyer${n}@example.com` },
        opts: { idempotencyKey: `checkout-${orderId}-${randomUUID().slice(0, 6)}`, actor: 'demo' },
      };
    });
    items.push(
      ...Array.from({ length: 2 }, () => ({
        type: 'payment.capture',
        payload: { orderId: `o-${n}-${randomUUID().slice(0, 4)}`, amount: 10, card: card() } as never,
        opts: { actor: 'demo' } as never,
      })),
    );
    void rebound.enqueueMany(items).catch(() => {});
    // Now and then a malformed invoice: a poison message.
    const poison = Math.random() < 0.12;
    void rebound.enqueue('invoice.parse', { raw: poison ? `{"invoice": ${n},` : `{"invoice": ${n}}` }, { actor: 'demo' }).catch(() => {});
  }, 1000);
  feed.unref();
  return {
    async stop() {
      clearInterval(feed);
    },
  };
}
