/**
 * With no OpenTelemetry SDK registered, an enqueue or an attempt that has no
 * trace to continue builds no span at all; a stored trace context or an active
 * span is still continued, and an SDK registered while the worker runs traces
 * the next attempt. (Its own file: the SDK is registered globally part-way.)
 */
import { context, ProxyTracer, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createRebound, defineJob } from '../../src/index.ts';
import { attemptTraced, tracingLive } from '../../src/observability/tracing.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('attempt spans without an SDK', () => {
  it('are skipped unless there is a trace to continue', () => {
    expect(tracingLive()).toBe(false);
    expect(attemptTraced({ traceContext: null })).toBe(false);
    expect(attemptTraced({ traceContext: TRACEPARENT })).toBe(true);
    context.setGlobalContextManager(contextManager.enable());
    const parent = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
    expect(context.with(trace.setSpan(ROOT_CONTEXT, parent), () => attemptTraced({ traceContext: null }))).toBe(true);
    expect(context.with(trace.setSpan(ROOT_CONTEXT, parent), tracingLive)).toBe(true);
    expect(attemptTraced({ traceContext: null })).toBe(false);
  });

  for (const kind of storeKinds) {
    it(`${kind}: an SDK registered while the worker runs traces the next attempt`, async () => {
      const url = freshStoreUrl(kind);
      const ran: string[] = [];
      const rebound = await createRebound({
        store: url,
        jobs: [defineJob('note', { handler: async (_p, ctx) => void ran.push(ctx.jobId) })],
      });
      try {
        const startSpan = vi.spyOn(ProxyTracer.prototype, 'startSpan');
        const worker = rebound.work({ concurrency: 1, pollIntervalMs: 20 });
        const before = await rebound.enqueue('note', {});
        await waitFor(() => ran.includes(before.id));
        // Neither the enqueue's producer span nor the attempt's span is made: both would be no-ops.
        expect(startSpan).not.toHaveBeenCalled();
        startSpan.mockRestore();
        expect((await rebound.getJob(before.id))?.traceContext).toBeNull();
        expect(exporter.getFinishedSpans()).toHaveLength(0);

        // Enqueued without an SDK (no trace context stored), run once one is registered.
        const later = await rebound.enqueue('note', {}, { delayMs: 300 });
        trace.setGlobalTracerProvider(provider);
        try {
          await waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'process note' && s.attributes['job.id'] === later.id));
          expect((await rebound.getJob(later.id))?.traceContext).toBeNull();
        } finally {
          trace.disable();
          exporter.reset();
        }
        await worker.stop();
      } finally {
        await rebound.close();
        await dropStore(url);
      }
    });
  }
});
