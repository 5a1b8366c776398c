/**
 * The `rebound start --demo` feeder: a steady stream of orders and captures,
 * invoices (now and then a malformed one) and reports (now and then one that
 * crashes its worker process). The job definitions are in ./jobs.ts.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pruneAudit, pruneStatsRollups } from '../observability/audit-retention.ts';
import type { EnqueueItem, Rebound } from '../rebound.ts';
import { OUTAGES } from './jobs.ts';

export const DEMO_JOBS_FILE = fileURLToPath(new URL('./jobs.ts', import.meta.url));

const CRASH_EVERY = Number(process.env.REBOUND_DEMO_CRASH_EVERY ?? 45);

export interface FeedOptions {
  /** Every Nth report crashes its worker process (default 45, from REBOUND_DEMO_CRASH_EVERY). */
  crashEvery?: number;
  /** Share of invoices that are malformed (default 0.12). */
  poisonRatio?: number;
}

/** The batches the feeder enqueues, one a call: orders, captures, an invoice and a report. */
export function demoFeed(o: FeedOptions = {}): () => EnqueueItem[] {
  let n = 0;
  let ticks = 0;
  const crashEvery = o.crashEvery ?? CRASH_EVERY;
  const poisonRatio = o.poisonRatio ?? 0.12;
  const card = () => `4242 4242 4242 ${String(1000 + (n % 9000))}`;
  return () => {
    const orders = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => {
      const orderId = `o-${++n}`;
      return {
        type: 'order.checkout',
        payload: { orderId, amount: Math.round(Math.random() * 20000) / 100 + 1, card: card(), email: `buyer${n}@example.com` },
        opts: { idempotencyKey: `checkout-${orderId}-${randomUUID().slice(0, 6)}`, actor: 'demo' },
      };
    });
    const captures = Array.from({ length: 2 }, () => ({
      type: 'payment.capture',
      payload: { orderId: `o-${n}-${randomUUID().slice(0, 4)}`, amount: 10, card: card() },
      opts: { actor: 'demo' },
    }));
    const poison = Math.random() < poisonRatio;
    const invoice = { type: 'invoice.parse', payload: { raw: poison ? `{"invoice": ${n},` : `{"invoice": ${n}}` }, opts: { actor: 'demo' } };
    // Every 45th report crashes its worker process; it goes to the dead letter queue as poison.
    ticks++;
    const report = { type: 'report.render', payload: { report: n, crash: ticks % crashEvery === 0 }, opts: { actor: 'demo' } };
    return [...orders, ...captures, invoice, report];
  };
}

const MINUTE = 60_000;

/**
 * The demo writes about 170 MB of audit trail a day, and nothing prunes a trail by default (it is often kept for
 * compliance): it keeps an hour of the trail and a day of per-minute stats (the dashboard charts the last hour). The
 * demo's coordinators run in its worker processes, started without options, so the server process prunes, once a
 * minute, the way `rebound audit prune` does (a second pruner is safe: each batch starts from the stored anchor).
 */
export const DEMO_VISIBILITY_RETENTION = { auditMs: 60 * MINUTE, statsMs: 24 * 60 * MINUTE };

export function pruneDemoVisibility(rebound: Rebound): Promise<void> {
  const v = rebound.store.visibility;
  const now = rebound.now();
  return pruneAudit(v, { olderThanMs: DEMO_VISIBILITY_RETENTION.auditMs, now, actor: 'demo', maxBatches: 20 })
    .then(() => pruneStatsRollups(v, { olderThanMs: DEMO_VISIBILITY_RETENTION.statsMs, now, maxBatches: 20 }))
    .then(
      () => {},
      (error) => rebound.events.emit('worker:error', { workerId: '-', error, during: 'demo prune' }),
    );
}

export async function startDemo(rebound: Rebound): Promise<{ stop(): Promise<void> }> {
  const next = demoFeed();
  const feed = setInterval(() => void rebound.enqueueMany(next()).catch(() => {}), 1000);
  feed.unref();
  let pruning: Promise<void> = Promise.resolve();
  const prune = setInterval(() => (pruning = pruning.then(() => pruneDemoVisibility(rebound))), MINUTE);
  prune.unref();
  return {
    async stop() {
      clearInterval(feed);
      clearInterval(prune);
      await pruning;
    },
  };
}

/** What the demo shows and where to look on the dashboard, printed under its address: the demo's logs are silent. */
export function demoGuide(storePath: string | null): string[] {
  const s = (ms: number) => `${Math.round(ms / 1000)} s`;
  return [
    `demo: orders, payment captures, invoices and reports arrive every second; the payment service is down ${s(OUTAGES.downMs)} in every ${s(OUTAGES.upMs + OUTAGES.downMs)}`,
    '  Breakers: `payments` opens in each outage and closes after it; orders wait meanwhile, and captures that died in it are redriven',
    `  Dead letters: malformed invoices (permanent), captures out of attempts (exhausted), every ${CRASH_EVERY}th report, which kills its worker process (poison; the process is restarted)`,
    '  Jobs: each order.checkout is a workflow (reserve-stock, charge, confirm); Schedules: settlement-report every minute',
    `${storePath ? `store: ${storePath}, emptied at each demo start; ` : ''}logs: REBOUND_LOG_LEVEL=info npm start; Ctrl-C stops the demo`,
  ];
}
