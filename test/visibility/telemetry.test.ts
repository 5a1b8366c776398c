/**
 * Metrics, logs, traces and redaction through the library, on both stores:
 * metric values after a known workload; every job log line carries its
 * fields; the span tree of a job that fails twice then succeeds; redacted
 * fields appear in no log, span, stored event or read.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineWorkflow, PermanentError, type JobDefinition, type Logger, type Rebound } from '../../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

function captureLogs(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream) as unknown as Logger;
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

const parentOf = (s: ReadableSpan): string | undefined =>
  (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ??
  (s as unknown as { parentSpanId?: string }).parentSpanId;

describe.each(storeKinds)('visibility telemetry on %s', (kind) => {
  let url: string;
  let rebound: Rebound | undefined;
  let logs: ReturnType<typeof captureLogs>;
  const open = async (jobs: JobDefinition[]) => {
    url = freshStoreUrl(kind);
    logs = captureLogs();
    rebound = await createRebound({ store: url, jobs, logger: logs.logger });
    return rebound;
  };
  const drain = async (r: Rebound) => {
    const worker = r.work({ pollIntervalMs: 10, drain: true });
    await worker.done;
  };
  beforeEach(() => exporter.reset());
  afterEach(async () => {
    await rebound?.close();
    rebound = undefined;
    await dropStore(url);
  });

  it('metrics count a known workload by type and outcome, and read queue depth from the store', async () => {
    let flakyCalls = 0;
    const r = await open([
      defineJob('ok', { handler: async () => 'fine' }),
      defineJob('flaky', {
        retry: { maxAttempts: 3, baseMs: 1, jitter: 'none' },
        handler: async () => {
          if (++flakyCalls === 1) throw new Error('first try fails');
        },
      }),
      defineJob('bad', {
        handler: async () => {
          throw new PermanentError('never works');
        },
      }),
    ]);
    for (let i = 0; i < 3; i++) await r.enqueue('ok', { i });
    await r.enqueue('flaky', {}, { idempotencyKey: 'f1' });
    await r.enqueue('flaky', {}, { idempotencyKey: 'f1' }); // deduplicated
    await r.enqueue('bad', {});
    await r.enqueue('ok', { later: true }, { delayMs: 3_600_000 });
    await drain(r);

    const text = await r.metrics();
    const value = (line: string) => {
      const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
      return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
    };
    expect(value('rebound_jobs_enqueued_total{type="ok",queue="default"}')).toBe(4);
    expect(value('rebound_jobs_enqueued_total{type="flaky",queue="default"}')).toBe(1);
    expect(value('rebound_jobs_deduplicated_total{type="flaky"}')).toBe(1);
    expect(value('rebound_jobs_started_total{type="flaky"}')).toBe(2);
    expect(value('rebound_jobs_completed_total{type="ok",outcome="completed"}')).toBe(3);
    expect(value('rebound_jobs_completed_total{type="flaky",outcome="retried"}')).toBe(1);
    expect(value('rebound_jobs_completed_total{type="flaky",outcome="completed"}')).toBe(1);
    expect(value('rebound_jobs_completed_total{type="bad",outcome="dead"}')).toBe(1);
    expect(value('rebound_job_retries_total{type="flaky"}')).toBe(1);
    expect(value('rebound_jobs_dead_total{type="bad",reason="permanent"}')).toBe(1);
    expect(value('rebound_job_run_duration_seconds_count{type="ok",outcome="completed"}')).toBe(3);
    expect(value('rebound_job_pickup_latency_seconds_count{type="ok"}')).toBe(3);
    expect(value('rebound_queue_depth{state="completed"}')).toBe(4);
    expect(value('rebound_queue_depth{state="scheduled"}')).toBe(1);
    expect(value('rebound_queue_depth{state="dead"}')).toBe(1);
    expect(value('rebound_dead_letter_jobs')).toBe(1);
    expect(value('rebound_oldest_waiting_age_seconds')).toBe(0);
    expect(text).toContain('# TYPE rebound_job_run_duration_seconds histogram');
  });

  it('every log line about a job carries job_id, parent_job_id, attempt, status, type and trace_id; handlers get them', async () => {
    let calls = 0;
    const r = await open([
      defineJob('greet', {
        retry: { maxAttempts: 3, baseMs: 1, jitter: 'none' },
        handler: async (_p, ctx) => {
          ctx.logger.info({ step: 'hello' }, 'handler says hello');
          if (++calls === 1) throw new Error('once');
        },
      }),
    ]);
    const { id } = await r.enqueue('greet', {});
    await drain(r);
    const about = logs.lines().filter((l) => l.job_id === id);
    const msgs = about.map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(['job enqueued', 'attempt started', 'handler says hello', 'attempt failed; retry scheduled', 'job completed']));
    const traceId = (await r.getJob(id))!.traceContext!.split('-')[1];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const line of about) {
      expect(line).toMatchObject({ job_id: id, parent_job_id: null, type: 'greet', trace_id: traceId });
      expect(typeof line.attempt).toBe('number');
      expect(typeof line.status).toBe('string');
    }
    expect(about.filter((l) => l.msg === 'handler says hello').map((l) => [l.attempt, l.status])).toEqual([
      [1, 'running'],
      [2, 'running'],
    ]);
    expect(about.find((l) => l.msg === 'attempt failed; retry scheduled')).toMatchObject({ status: 'retry', attempt: 1 });
  });

  it('traces a job that fails twice then succeeds: one producer span, three consumer attempts in the same trace; child jobs are child spans', async () => {
    let calls = 0;
    const r = await open([
      defineJob('flaky', {
        retry: { maxAttempts: 5, baseMs: 1, jitter: 'none' },
        handler: async (_p, ctx) => {
          if (++calls <= 2) throw new Error(`upstream 503 #${calls}`);
          await r.enqueue('child', { from: ctx.jobId }, { parentId: ctx.jobId });
        },
      }),
      defineJob('child', { handler: async () => 'done' }),
    ]);
    const { id } = await r.enqueue('flaky', { n: 1 });
    await drain(r);
    const spans = exporter.getFinishedSpans();
    const producer = spans.find((s) => s.name === 'enqueue flaky')!;
    expect(producer).toBeDefined();
    expect(producer.attributes).toMatchObject({ 'job.id': id, 'job.type': 'flaky', 'job.queue': 'default', outcome: 'enqueued' });
    const attempts = spans.filter((s) => s.name === 'process flaky').sort((a, b) => Number(a.attributes['job.attempt']) - Number(b.attributes['job.attempt']));
    expect(attempts).toHaveLength(3);
    for (const a of attempts) {
      expect(a.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(parentOf(a)).toBe(producer.spanContext().spanId);
      expect(a.attributes).toMatchObject({ 'job.id': id, 'job.type': 'flaky', 'job.queue': 'default' });
    }
    expect(attempts.map((a) => [a.attributes['job.attempt'], a.attributes.outcome, a.attributes['job.status'], a.attributes['error.class'] ?? null])).toEqual([
      [1, 'failed', 'retry', 'transient'],
      [2, 'failed', 'retry', 'transient'],
      [3, 'completed', 'completed', null],
    ]);
    // The child job, enqueued inside attempt 3, is traced under it.
    const childProducer = spans.find((s) => s.name === 'enqueue child')!;
    expect(parentOf(childProducer)).toBe(attempts[2].spanContext().spanId);
    const childRun = spans.find((s) => s.name === 'process child')!;
    expect(childRun.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(childRun.attributes['job.parent_id']).toBe(id);
    expect(parentOf(childRun)).toBe(childProducer.spanContext().spanId);
  });

  it('a large enqueueMany gives every job its producer span and stored trace context', async () => {
    const r = await open([defineJob('bulk', { handler: async () => {} })]);
    const results = await r.enqueueMany(Array.from({ length: 600 }, (_, i) => ({ type: 'bulk', payload: { i } })));
    const producers = exporter.getFinishedSpans().filter((s) => s.name === 'enqueue bulk');
    expect(producers).toHaveLength(600);
    const byJob = new Map(producers.map((s) => [s.attributes['job.id'], s]));
    for (const { id } of [results[0], results[250], results[599]]) {
      const span = byJob.get(id)!;
      expect(span.attributes).toMatchObject({ outcome: 'enqueued', 'job.status': 'available' });
      expect((await r.getJob(id))!.traceContext).toContain(span.spanContext().spanId);
    }
  });

  it('workflow steps are child spans of the attempt that ran them', async () => {
    let failOnce = true;
    const r = await open([
      defineWorkflow('checkout', {
        run: async (ctx) => {
          await ctx.step('charge', () => 'ok');
          await ctx.step('ship', () => {
            if (failOnce) {
              failOnce = false;
              throw new Error('carrier down');
            }
            return 'shipped';
          }, { retry: { baseMs: 1, jitter: 'none' } });
        },
      }),
    ]);
    await r.enqueue('checkout', {});
    await drain(r);
    const spans = exporter.getFinishedSpans();
    const attempts = spans.filter((s) => s.name === 'process checkout');
    const steps = spans.filter((s) => s.name.startsWith('step '));
    expect(steps.map((s) => [s.name, s.attributes['workflow.step.attempt'], s.attributes.outcome])).toEqual([
      ['step charge', 1, 'completed'],
      ['step ship', 1, 'failed'],
      ['step ship', 2, 'completed'],
    ]);
    for (const s of steps) {
      const parent = attempts.find((a) => a.spanContext().spanId === parentOf(s));
      expect(parent, s.name).toBeDefined();
      expect(s.spanContext().traceId).toBe(parent!.spanContext().traceId);
    }
    // The recorded 'charge' step is replayed, not rerun, in the second attempt: no second span for it.
    expect(new Set(steps.map((s) => parentOf(s))).size).toBe(2);
  });

  it('a compensated workflow (it failed for good, its steps undone) is counted, traced, logged and in stats as compensated, not completed', async () => {
    const r = await open([
      defineWorkflow('order', {
        run: async (ctx) => {
          await ctx.step('charge', () => 'charged', { compensate: () => {} });
          await ctx.step('ship', () => {
            throw new PermanentError('no carrier');
          });
        },
      }),
    ]);
    const { id } = await r.enqueue('order', {});
    await drain(r);
    expect((await r.getJob(id))!.state).toBe('compensated');

    const text = await r.metrics();
    expect(text).toContain('rebound_jobs_completed_total{type="order",outcome="compensated"} 1');
    expect(text).toContain('rebound_job_run_duration_seconds_count{type="order",outcome="compensated"} 1');
    expect(text).not.toContain('rebound_jobs_completed_total{type="order",outcome="completed"}');

    const attempt = exporter.getFinishedSpans().find((s) => s.name === 'process order')!;
    expect(attempt.attributes).toMatchObject({ outcome: 'compensated', 'job.status': 'compensated' });

    expect(logs.lines().filter((l) => l.job_id === id && l.msg === 'job compensated')).toMatchObject([{ status: 'compensated' }]);
    expect(logs.lines().some((l) => l.job_id === id && l.msg === 'job completed')).toBe(false);

    const { totals } = await r.stats({ window: '5m' });
    expect(totals).toMatchObject({ completed: 0, compensated: 1, success_rate: 0 });
  });

  it('an attempt that ran past its timeout is a failed span even when its handler, ignoring the abort, returns later', async () => {
    let release!: () => void;
    const late = new Promise<void>((resolve) => (release = resolve));
    const r = await open([
      defineJob('slow', {
        timeoutMs: 20,
        retry: { maxAttempts: 1 },
        handler: async () => {
          await late;
          return 'too late';
        },
      }),
    ]);
    const { id } = await r.enqueue('slow', {});
    const worker = r.work({ pollIntervalMs: 10 });
    await waitFor(async () => (await r.getJob(id))!.state === 'dead');
    release();
    const span = (await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'process slow')))!;
    await worker.stop();
    expect((await r.getJob(id))!.lastError).toMatchObject({ kind: 'timeout' });
    expect(span.attributes).toMatchObject({ outcome: 'failed', 'job.status': 'dead', 'error.class': 'timeout' });
    expect(span.status.code).toBe(2); // ERROR
  });

  it('keeps redacted fields out of logs, spans, stored events, error snapshots and masked reads', async () => {
    const card = '4111111111111111';
    const email = 'alice@example.com';
    const r = await open([
      defineJob('charge', {
        redact: ['card.number', 'customer.email'],
        handler: async (p: { card: { number: string }; customer: { email: string } }, ctx) => {
          ctx.logger.info({ step: 'charging' }, 'charging');
          throw new PermanentError(`card ${p.card.number} of ${p.customer.email} declined`);
        },
      }),
    ]);
    const { id } = await r.enqueue('charge', { card: { number: card, brand: 'visa' }, customer: { email, name: 'Alice' }, amount: 12 });
    await drain(r);

    const masked = await r.inspect(id);
    const raw = await r.inspect(id, { unmasked: true });
    expect(raw.job.payload).toMatchObject({ card: { number: card } });
    expect(masked.job.payload).toEqual({ card: { number: '[REDACTED]', brand: 'visa' }, customer: { email: '[REDACTED]', name: 'Alice' }, amount: 12 });
    expect(masked.job.lastError).toMatchObject({ kind: 'permanent', message: 'card [REDACTED] of [REDACTED] declined' });
    expect(masked.job.lastError!.payload).toEqual(masked.job.payload);

    const everywhere = [
      logs.text(),
      JSON.stringify(exporter.getFinishedSpans().map((s) => ({ a: s.attributes, e: s.events, st: s.status, n: s.name }))),
      JSON.stringify(await r.store.getEvents(id)),
      JSON.stringify(masked),
      JSON.stringify(raw.job.lastError),
      await r.metrics(),
    ];
    for (const text of everywhere) {
      expect(text).not.toContain(card);
      expect(text).not.toContain(email);
    }
    // The spans of the failed attempt were written (so the check above looked at something).
    expect(exporter.getFinishedSpans().some((s) => s.name === 'process charge' && s.attributes['error.class'] === 'permanent')).toBe(true);
  });

  it('scrubs redacted values from a thrown string, a thrown plain object and a workflow step\'s error', async () => {
    const card = '4111111111111111';
    const r = await open([
      defineJob('throws-string', { redact: ['card.number'], retry: { maxAttempts: 1 }, handler: async (p: { card: { number: string } }) => { throw `card ${p.card.number} declined`; } }),
      defineJob('throws-object', {
        redact: ['card.number'],
        retry: { maxAttempts: 1 },
        handler: async (p: { card: { number: string } }) => {
          throw { code: 'declined', message: `card ${p.card.number} declined` };
        },
      }),
      defineWorkflow('pays', {
        redact: ['card.number'],
        retry: { maxAttempts: 1 },
        run: async (ctx, p: { card: { number: string } }) => {
          await ctx.step('charge', () => {
            throw new PermanentError(`card ${p.card.number} declined`);
          });
        },
      }),
    ]);
    const ids = [];
    for (const type of ['throws-string', 'throws-object', 'pays']) ids.push((await r.enqueue(type, { card: { number: card } })).id);
    const worker = r.work({ pollIntervalMs: 10 });
    await waitFor(async () => (await r.countJobs({ state: 'dead' })) === 3);
    await worker.stop();
    const [asString, asObject] = await Promise.all(ids.slice(0, 2).map((id) => r.inspect(id, { unmasked: true })));
    expect(asString.job.lastError?.message).toBe('card [REDACTED] declined');
    expect(asObject.job.lastError).toMatchObject({ code: 'declined', message: 'card [REDACTED] declined' });
    const flow = await r.workflow(ids[2]);
    expect(flow.steps[0].error?.message).toBe('card [REDACTED] declined');
    const everywhere = [
      logs.text(),
      JSON.stringify(exporter.getFinishedSpans().map((s) => ({ a: s.attributes, e: s.events, st: s.status }))),
      JSON.stringify(await Promise.all(ids.map((id) => r.inspect(id)))),
      JSON.stringify(await Promise.all(ids.map(async (id) => (await r.inspect(id, { unmasked: true })).job.lastError))),
      JSON.stringify(await Promise.all(ids.map((id) => r.store.getEvents(id)))),
      JSON.stringify(flow),
    ];
    for (const text of everywhere) expect(text).not.toContain(card);
  });

  it('scrubs redacted values from the error name a span reports (error.type), as from the stored error', async () => {
    const card = '4111111111111111';
    const r = await open([
      defineJob('named', {
        redact: ['card'],
        retry: { maxAttempts: 1 },
        handler: async (p: { card: string }) => {
          const e = new Error('declined');
          e.name = `DeclinedError[${p.card}]`;
          throw e;
        },
      }),
      defineJob('named-object', {
        redact: ['card'],
        retry: { maxAttempts: 1 },
        handler: async (p: { card: string }) => {
          throw { name: `DeclinedError[${p.card}]`, message: 'declined' };
        },
      }),
    ]);
    const ids = [(await r.enqueue('named', { card })).id, (await r.enqueue('named-object', { card })).id];
    await drain(r);
    for (const id of ids) expect((await r.getJob(id))!.lastError?.name).toBe('DeclinedError[[REDACTED]]');
    const attempts = exporter.getFinishedSpans().filter((s) => s.name.startsWith('process named'));
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual(['DeclinedError[[REDACTED]]', 'DeclinedError[[REDACTED]]']);
    expect(JSON.stringify(attempts.map((s) => ({ a: s.attributes, e: s.events, st: s.status })))).not.toContain(card);
  });
});

describe('metrics registry', () => {
  it('two clients can share one registry (prom-client\'s global one, say) without a duplicate-metric error', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const url = freshStoreUrl('sqlite');
    const a = await createRebound({ store: url, metrics: registry, jobs: [defineJob('x', { handler: () => {} })] });
    const b = await createRebound({ store: url, metrics: registry, jobs: [defineJob('x', { handler: () => {} })] });
    try {
      await a.enqueue('x', {});
      await b.enqueue('x', {});
      expect(await registry.metrics()).toContain('rebound_jobs_enqueued_total{type="x",queue="default"} 2');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('a shared metrics registry after a client closed', () => {
  it('reads the live client\'s store on scrape, not the first client\'s closed one', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const urls = [freshStoreUrl('sqlite'), freshStoreUrl('sqlite')];
    const a = await createRebound({ store: urls[0], metrics: registry, jobs: [defineJob('x', { handler: () => {} })] });
    await a.enqueue('x', {});
    await a.close();
    const b = await createRebound({ store: urls[1], metrics: registry, jobs: [defineJob('x', { handler: () => {} })] });
    try {
      await b.enqueueMany([{ type: 'x', payload: {} }, { type: 'x', payload: {} }, { type: 'x', payload: {} }]);
      expect(await registry.metrics()).toContain('rebound_queue_depth{state="available"} 3');
      expect(await b.metrics()).toContain('rebound_dead_letter_jobs 0');
    } finally {
      await b.close();
    }
  });
});

describe('metrics from other capabilities\' events', () => {
  it('count supervisor processes, restarts, breaker states and retention prunes', async () => {
    const url = freshStoreUrl('sqlite');
    const r = await createRebound({ store: url, jobs: [] });
    try {
      const emit = (name: string, e: object) => r.events.emit(name as never, e as never);
      emit('supervisor:process_started', { slot: 0, pid: 10, restarts: 0 });
      emit('supervisor:process_started', { slot: 1, pid: 11, restarts: 0 });
      emit('supervisor:process_exited', { slot: 1, pid: 11, code: null, signal: 'SIGKILL', reason: 'crashed' });
      emit('supervisor:process_restarting', { slot: 1, delayMs: 100, reason: 'crashed', crashes: 1 });
      emit('supervisor:process_started', { slot: 1, pid: 12, restarts: 1 });
      emit('breaker:changed', { name: 'payments', from: 'closed', to: 'open', reason: 'failures', actor: 'breaker', at: 0 });
      emit('retention:pruned', { state: 'completed', counts: { email: 3 }, term: 1 });
      emit('worker:error', { workerId: 'w', error: new Error('db down'), during: 'complete; try 2 follows' });
      emit('worker:error', { workerId: 'w', error: new Error('db down'), during: 'complete' });
      const text = await r.metrics();
      expect(text).toContain('rebound_worker_processes 2');
      expect(text).toContain('rebound_worker_restarts_total{reason="crashed"} 1');
      expect(text).toContain('rebound_worker_exits_total{reason="crashed"} 1');
      expect(text).toContain('rebound_breaker_transitions_total{breaker="payments",state="open"} 1');
      expect(text).toContain('rebound_jobs_pruned_total{type="email",state="completed"} 3');
      // A store write tried again and the last try are one label value, not "complete;" and "complete".
      expect(text).toContain('rebound_worker_errors_total{during="complete"} 2');
    } finally {
      await r.close();
      await dropStore(url);
    }
  });
});

describe.each(storeKinds)('the breaker state gauge on %s', (kind) => {
  it('is the stored state in every process: one that saw the breaker open reads it closed once another closed it, and a new one reads it open', async () => {
    const url = freshStoreUrl(kind);
    const clients: Rebound[] = [];
    const client = async () => {
      const r = await createRebound({ store: url, jobs: [] });
      clients.push(r);
      return r;
    };
    const gauge = async (r: Rebound) => (await r.metrics()).split('\n').filter((l) => l.startsWith('rebound_breaker_state{'));
    try {
      const [a, b] = [await client(), await client()];
      await a.breakers.force('payments', 'open');
      expect(await gauge(a)).toEqual(['rebound_breaker_state{breaker="payments"} 2']);
      await b.breakers.force('payments', 'reset');
      expect(await gauge(a)).toEqual(['rebound_breaker_state{breaker="payments"} 0']);
      await b.breakers.force('payments', 'open');
      const restarted = await client();
      expect(await gauge(restarted)).toEqual(['rebound_breaker_state{breaker="payments"} 2']);
    } finally {
      for (const r of clients) await r.close();
      await dropStore(url);
    }
  });
});

describe.each(storeKinds)('the oldest waiting age gauge on %s', (kind) => {
  it('counts a delayed job that is due but unclaimed (claimed from scheduled, never moved to available), not one still in the future', async () => {
    const url = freshStoreUrl(kind);
    let clock = Date.UTC(2026, 11, 3, 12, 0, 0);
    const r = await createRebound({ store: url, now: () => clock, jobs: [defineJob('x', { handler: () => {} })] });
    const age = async () => (await r.metrics()).split('\n').find((l) => l.startsWith('rebound_oldest_waiting_age_seconds '));
    try {
      await r.enqueue('x', {}, { delayMs: 60_000 });
      await r.enqueue('x', {}, { delayMs: 3_600_000 });
      expect(await age()).toBe('rebound_oldest_waiting_age_seconds 0');
      clock += 10 * 60_000; // no worker ran: the first job has waited nine minutes since it was due
      expect((await r.listJobs({})).map((j) => j.state)).toEqual(['scheduled', 'scheduled']);
      expect(await age()).toBe('rebound_oldest_waiting_age_seconds 540');
    } finally {
      await r.close();
      await dropStore(url);
    }
  });
});

describe('redaction rules', () => {
  it('refuses a malformed redact path at definition time', () => {
    expect(() => defineJob('x', { redact: ['card..number'], handler: () => {} })).toThrow(/redact/);
  });

  it('masks through arrays and wildcards', async () => {
    const { maskPayload } = await import('../../src/observability/redaction.ts');
    const def = { redact: ['items.card', 'meta.*.secret'] };
    expect(maskPayload(def, { items: [{ card: '1', n: 1 }, { card: '2' }], meta: { a: { secret: 's', keep: 1 } } })).toEqual({
      items: [{ card: '[REDACTED]', n: 1 }, { card: '[REDACTED]' }],
      meta: { a: { secret: '[REDACTED]', keep: 1 } },
    });
  });
});
