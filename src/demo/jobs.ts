/**
 * The demo's job definitions, a jobs file like any other: the server loads it,
 * and so does every supervised worker process (`rebound worker --jobs`).
 * - order.checkout: a workflow (reserve stock, charge, confirm) whose charge
 *   step goes through the `payments` circuit breaker;
 * - payment.capture: plain jobs guarded by the same breaker, with few attempts,
 *   so some die early in an outage and are redriven when it closes;
 * - invoice.parse: malformed invoices fail for good (permanent errors, straight to the dead letter queue);
 * - report.render: now and then kills its own worker process; the supervisor
 *   restarts it, and the report that killed it is poison (dead letter queue).
 */
import { z } from 'zod';
import { defineSchedule } from '../coordination/schedules.ts';
import { defineJob } from '../define.ts';
import { PermanentError } from '../errors.ts';
import { defineWorkflow } from '../workflows/define-workflow.ts';
import { PaymentService } from './payment-service.ts';

/** Up 45 s, down 20 s by default: long enough to watch the breaker open, probe and close. */
export const OUTAGES = { upMs: Number(process.env.REBOUND_DEMO_UP_MS ?? 45_000), downMs: Number(process.env.REBOUND_DEMO_DOWN_MS ?? 20_000) };
const payment = new PaymentService(OUTAGES.upMs, OUTAGES.downMs, Date.now, process.env.REBOUND_DEMO_EPOCH ? Number(process.env.REBOUND_DEMO_EPOCH) : undefined);

// The demo runs until stopped, about six jobs a second: with the default retention (completed jobs 7 days, dead 30)
// a demo left running for a week would hold millions of jobs, gigabytes. It keeps half an hour of finished jobs,
// and two hours of the dead letter queue.
const MINUTE = 60_000;
export const RETENTION = { completedMs: 30 * MINUTE, cancelledMs: 30 * MINUTE, deadMs: 120 * MINUTE };

// The demo's bad reports kill their worker process on purpose; a payment probe that was running there never
// reports, and holds the breaker half-open until its slot times out (60 s by default). 10 s keeps the story moving.
const PAYMENTS = {
  name: 'payments',
  consecutiveFailures: 8,
  minCalls: 10,
  failureRatio: 0.5,
  windowMs: 10_000,
  cooldownMs: 4000,
  maxCooldownMs: 12_000,
  probeTimeoutMs: 10_000,
};

const order = z.object({ orderId: z.string(), amount: z.number().positive(), card: z.string(), email: z.string() });
type Order = z.infer<typeof order>;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default [
  defineWorkflow('order.checkout', {
    schema: order,
    // Short leases: when a worker process dies, its jobs are back within seconds.
    leaseMs: 5000,
    redact: ['card', 'email'],
    breaker: PAYMENTS,
    retention: RETENTION,
    // A job is kept while its idempotency key lives (24 h by default).
    keyTtlMs: RETENTION.completedMs,
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
    leaseMs: 5000,
    redact: ['card'],
    breaker: PAYMENTS,
    retention: RETENTION,
    retry: { maxAttempts: 2, backoff: 'fixed', baseMs: 300, jitter: 'none' },
    handler: async (p: { orderId: string; amount: number; card: string }) => payment.charge(`cap-${p.orderId}`, p.amount),
  }),
  defineJob('invoice.parse', {
    retention: RETENTION,
    retry: { maxAttempts: 2, baseMs: 500 },
    handler: async (p: { raw: string }) => {
      try {
        return JSON.parse(p.raw);
      } catch (err) {
        throw new PermanentError(`cannot parse invoice: ${(err as Error).message}`, { code: 'bad_invoice' });
      }
    },
  }),
  defineJob('report.render', {
    leaseMs: 2000,
    retention: RETENTION,
    // The first crash makes it poison: one process death per bad report.
    maxCrashes: 0,
    handler: async (p: { report: number; crash?: boolean }) => {
      await pause(100 + Math.random() * 200);
      // A native library bug in the renderer: the whole process dies, mid-job.
      if (p.crash && process.env.REBOUND_DEMO_NO_CRASH !== '1') process.kill(process.pid, 'SIGKILL');
      return { pages: 1 + (p.report % 7) };
    },
  }),
];

export const schedules = [defineSchedule('settlement-report', { cron: '*/1 * * * *', type: 'report.render', payload: { report: 0 } })];
