/**
 * OpenTelemetry traces, through @opentelemetry/api only: the user's SDK decides
 * sampling and export. Enqueue opens a producer span and stores its W3C
 * traceparent on the job; every attempt runs in a consumer span whose parent
 * is that producer span, so retries and redrives stay in the enqueue's trace.
 * A handler that enqueues child jobs does so inside its consumer span, so the
 * children's spans are descendants of it. With no SDK registered every span is
 * a no-op and no trace context is stored.
 */
import {
  context,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import type { Job, NewJob } from '../job.ts';
import type { InsertedJob } from '../store/store.ts';

export const TRACER_NAME = 'rebound';

export function reboundTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** `00-<trace id>-<span id>-<flags>`, or null for an invalid (unsampled no-op) context. */
export function toTraceparent(sc: SpanContext): string | null {
  if (!trace.isSpanContextValid(sc)) return null;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

export function fromTraceparent(value: string | null | undefined): SpanContext | null {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? '');
  if (!m) return null;
  const sc: SpanContext = { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16), isRemote: true };
  return trace.isSpanContextValid(sc) ? sc : null;
}

/** The context a job's attempts run under: the producer span's, else the current one. */
export function jobParentContext(job: Pick<Job, 'traceContext'>): Context {
  const sc = fromTraceparent(job.traceContext);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : context.active();
}

export function jobAttributes(job: Job): Attributes {
  return {
    'job.id': job.id,
    ...(job.parentId ? { 'job.parent_id': job.parentId } : {}),
    'job.type': job.type,
    'job.queue': job.queue,
    'job.attempt': job.attempt,
    'job.max_attempts': job.maxAttempts,
  };
}

/** Runs `next` (the insert) inside one producer span per job, and stores each span's traceparent on its job. */
export async function tracedEnqueue(tracer: Tracer, jobs: NewJob[], next: () => Promise<InsertedJob[]>): Promise<InsertedJob[]> {
  const spans: Span[] = jobs.map((j) => {
    const span = tracer.startSpan(`enqueue ${j.type}`, {
      kind: SpanKind.PRODUCER,
      attributes: { 'job.type': j.type, 'job.queue': j.queue, ...(j.parentId ? { 'job.parent_id': j.parentId } : {}) },
    });
    j.traceContext = toTraceparent(span.spanContext());
    return span;
  });
  try {
    const inserted = await next();
    inserted.forEach((r, i) => {
      spans[i]?.setAttributes({
        'job.id': r.job.id,
        'job.status': r.job.state,
        'job.attempt': r.job.attempt,
        'rebound.deduplicated': !r.inserted,
        outcome: r.inserted ? 'enqueued' : 'deduplicated',
      });
    });
    return inserted;
  } catch (err) {
    for (const s of spans) {
      s.setAttributes({ outcome: 'refused', 'error.type': (err as Error)?.name ?? 'Error' });
      s.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
    }
    throw err;
  } finally {
    for (const s of spans) s.end();
  }
}

export interface AttemptEnd {
  /** completed | compensated | failed | snoozed | lease_lost | aborted */
  outcome: string;
  /** What becomes of the job: completed | compensated | retry | dead | snoozed | lease_lost | released */
  status: string;
  /** The error class (transient, permanent, timeout, lease_lost, ...) when the attempt failed. */
  errorClass?: string;
  errorName?: string;
  errorMessage?: string;
}

/** The API's no-op provider: the global provider's delegate until an SDK registers one. */
const NO_SDK = new ProxyTracerProvider().getDelegate();

/**
 * Whether a span made now could be recorded or carry a trace on: an SDK is registered, or a span is active where
 * the code runs. Else a span is a no-op with no trace id, and building it (parent context, attributes, the span
 * object) costs every job for nothing. Looked at each time, so an SDK registered later is used from then on.
 */
export function tracingLive(): boolean {
  const provider = trace.getTracerProvider();
  if (!(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK) return true;
  return trace.getSpan(context.active()) !== undefined;
}

/** Whether an attempt of `job` can have a span: it continues the job's stored trace, or tracing is live. */
export function attemptTraced(job: Pick<Job, 'traceContext'>): boolean {
  return Boolean(job.traceContext) || tracingLive();
}

/**
 * Starts the consumer span of one attempt; the caller runs the handler in `ctx` and calls `end`.
 * Null when no SDK is registered (the span is a no-op with no trace id): nothing to run under or end.
 */
export function startAttemptSpan(tracer: Tracer, job: Job): { span: Span; ctx: Context; end: (e: AttemptEnd) => void } | null {
  const parent = jobParentContext(job);
  const span = tracer.startSpan(`process ${job.type}`, { kind: SpanKind.CONSUMER, attributes: jobAttributes(job) }, parent);
  if (!job.traceContext && !trace.isSpanContextValid(span.spanContext())) return null;
  return {
    span,
    ctx: trace.setSpan(parent, span),
    end(e) {
      span.setAttributes({
        outcome: e.outcome,
        'job.status': e.status,
        ...(e.errorClass ? { 'error.class': e.errorClass, 'error.type': e.errorName ?? 'Error' } : {}),
      });
      if (e.errorClass) span.setStatus({ code: SpanStatusCode.ERROR, message: e.errorMessage });
      else span.setStatus({ code: SpanStatusCode.OK });
      span.end();
    },
  };
}
