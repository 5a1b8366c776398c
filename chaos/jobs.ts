/**
 * The chaos workload's job types, loaded by every worker process
 * (`rebound worker --jobs chaos/jobs.ts`). Each type that should complete pays
 * once through `ctx.once` and the payment service's idempotency key, then
 * misbehaves in its own way. The expected final state of each type is in
 * workload.ts.
 */
import { defineJob, PermanentError, RetryableError, type JobContext } from '../src/index.ts';

const PAYMENTS_URL = process.env.CHAOS_PAYMENTS_URL ?? 'http://127.0.0.1:1';
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/** Retries come fast: the experiment has minutes, not hours, and a downstream outage lasts seconds. */
const retry = { maxAttempts: 40, baseMs: 50, maxMs: 1000 };

/**
 * The payment service's breaker, shared by every worker process: an outage trips it and the paying
 * jobs wait without using attempts. Only the service's own failures count (a database restart does not).
 * Cool-downs are seconds, to fit the experiment.
 */
const breaker = {
  name: 'payments',
  cooldownMs: 1000,
  maxCooldownMs: 4000,
  windowMs: 10_000,
  halfOpenProbes: 2,
  probeTimeoutMs: 5000,
  countsAsFailure: (err: unknown) => /^downstream_/.test(String((err as { code?: unknown })?.code)),
};

interface Pay {
  amount: number;
}

/** The effect: one payment per job, whatever happens to the worker. */
async function pay(p: Pay, ctx: JobContext): Promise<void> {
  await ctx.once('pay', async ({ idempotencyKey }) => {
    let res: Response;
    try {
      res = await fetch(`${PAYMENTS_URL}/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify({ jobId: ctx.jobId, amount: p.amount }),
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(5000)]),
      });
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new RetryableError(`payment service unreachable: ${(err as Error).message}`, { code: 'downstream_down' });
    }
    if (!res.ok) throw new RetryableError(`payment service answered ${res.status}`, { code: 'downstream_error' });
    return (await res.json()) as { row: number };
  });
}

export default {
  /** The bulk: pay, a little work, done. */
  'chaos.pay': defineJob('chaos.pay', {
    leaseMs: 2000,
    retry,
    breaker,
    handler: async (p: Pay & { ms: number }, ctx) => {
      await pay(p, ctx);
      await sleep(p.ms, ctx.signal);
    },
  }),
  /** Runs for longer than its lease: only heartbeats keep it. */
  'chaos.slow': defineJob('chaos.slow', {
    leaseMs: 1500,
    retry,
    breaker,
    handler: async (p: Pay & { ms: number }, ctx) => {
      await pay(p, ctx);
      await sleep(p.ms, ctx.signal);
    },
  }),
  /** Throws on its first `failTimes` attempts, then succeeds. */
  'chaos.flaky': defineJob('chaos.flaky', {
    leaseMs: 2000,
    retry,
    handler: async (p: Pay & { failTimes: number }, ctx) => {
      await pay(p, ctx);
      if (ctx.attempt <= p.failTimes) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
    },
  }),
  /** Hangs past its timeout on the first attempt (ignoring the abort signal), then succeeds. */
  'chaos.hang': defineJob('chaos.hang', {
    leaseMs: 2000,
    timeoutMs: 300,
    retry,
    handler: async (p: Pay, ctx) => {
      await pay(p, ctx);
      if (ctx.attempt === 1) await new Promise(() => {});
    },
  }),
  /** Blocks its process's event loop past its lease on the first attempt: no heartbeat can run. */
  'chaos.block': defineJob('chaos.block', {
    leaseMs: 800,
    retry,
    handler: async (p: Pay, ctx) => {
      await pay(p, ctx);
      if (ctx.attempt === 1) {
        const until = Date.now() + 1100;
        while (Date.now() < until);
      }
    },
  }),
  /** Fails for good: belongs in the dead letter queue with reason "permanent". */
  'chaos.permanent': defineJob('chaos.permanent', {
    retry,
    handler: async () => {
      throw new PermanentError('card declined');
    },
  }),
  /** Fails every time: belongs in the dead letter queue with reason "exhausted". */
  'chaos.exhausted': defineJob('chaos.exhausted', {
    retry: { ...retry, maxAttempts: 3 },
    handler: async () => {
      throw new Error('always fails');
    },
  }),
  /** Kills its own process: belongs in the dead letter queue with reason "poison". */
  'chaos.poison': defineJob('chaos.poison', {
    leaseMs: 1000,
    maxCrashes: 2,
    retry,
    handler: async () => {
      process.kill(process.pid, 'SIGKILL');
      await sleep(10_000);
    },
  }),
};
