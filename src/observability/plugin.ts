/**
 * The worker plugin of the visibility capability: a consumer span around each
 * attempt, the handler's logger, and a failed attempt's context (its error
 * scrubbed of sensitive values, and a redacted payload snapshot).
 */
import { context, type Tracer } from '@opentelemetry/api';
import type { JobDefinition } from '../define.ts';
import { LeaseLostError, ShutdownError, Snooze } from '../errors.ts';
import { endStateOf, type Job, type Json } from '../job.ts';
import { classifyError } from '../policies/retry.ts';
import type { WorkerPlugin } from '../runtime/plugin.ts';
import { maskPayload, scrub, sensitiveValues } from './redaction.ts';
import { attemptTraced, startAttemptSpan, tracedEnqueue, tracingLive, type AttemptEnd } from './tracing.ts';

/** Larger payloads are summarised in error snapshots rather than copied. */
export const MAX_SNAPSHOT_BYTES = 16 * 1024;

export function visibilityPlugin(opts: { tracer: Tracer | null; /** The API's global tracer: no-op until an SDK registers. */ globalTracer?: boolean }): WorkerPlugin {
  const tracer = opts.tracer;
  return {
    name: 'visibility',
    // With the global tracer and no SDK, a producer span is a no-op that stores no trace context: skip it.
    ...(tracer ? { wrapEnqueue: (jobs, next) => (opts.globalTracer && !tracingLive() ? next() : tracedEnqueue(tracer, jobs, next)) } : {}),
    // An attempt without a span is not wrapped: its error is only sanitized (mapError).
    wraps: (job) => tracer != null && (!opts.globalTracer || attemptTraced(job)),
    async wrap(next, ctx, job, def) {
      const attempt = startAttemptSpan(tracer!, job);
      try {
        const value = attempt ? await context.with(attempt.ctx, next) : await next();
        // The worker decides by the abort's reason first: a handler that ignored its timeout and returned late failed.
        if (attempt && ctx.signal.aborted) attempt.end(describeFailure(ctx.signal.reason, job, def));
        else if (attempt) attempt.end(endStateOf(value) ? { outcome: 'compensated', status: 'compensated' } : { outcome: 'completed', status: 'completed' });
        return value;
      } catch (err) {
        sanitizeError(err, job, def);
        attempt?.end(describeFailure(ctx.signal.aborted ? ctx.signal.reason : err, job, def));
        throw err;
      }
    },
    mapError(err, job, def) {
      sanitizeError(err, job, def);
      return err;
    },
  };
}

/** Scrubs sensitive values from the error's name, message and stack, and attaches a redacted payload snapshot. */
export function sanitizeError(err: unknown, job: Job, def: JobDefinition): void {
  if (!err || typeof err !== 'object') return;
  try {
    const values = sensitiveValues(def, job.payload);
    if (values.length && err instanceof Error) {
      const name = typeof err.name === 'string' ? scrub(err.name, values) : err.name;
      if (name !== err.name) err.name = name;
      err.message = scrub(err.message, values);
      if (err.stack) err.stack = scrub(err.stack, values);
    }
    (err as { payloadSnapshot?: Json }).payloadSnapshot = payloadSnapshot(def, job.payload);
  } catch {
    // A frozen error object: keep it as it is.
  }
}

export function payloadSnapshot(def: JobDefinition | undefined, payload: Json): Json {
  const masked = maskPayload(def, payload);
  const bytes = Buffer.byteLength(JSON.stringify(masked));
  return bytes > MAX_SNAPSHOT_BYTES ? { truncated: true, bytes } : masked;
}

const TAXONOMY = new Set(['breaker_open', 'validation', 'poison', 'lease_lost', 'timeout']);

export function describeFailure(err: unknown, job: Job, def: JobDefinition): AttemptEnd {
  if (err instanceof Snooze) return { outcome: 'snoozed', status: 'snoozed' };
  if (err instanceof ShutdownError) return { outcome: 'aborted', status: 'released' };
  const e = err as { name?: string; message?: string; code?: unknown } | null;
  // A thrown string or plain object is not scrubbed in place (sanitizeError): its text is scrubbed here.
  const secrets = sensitiveValues(def, job.payload);
  const name = scrub(typeof e?.name === 'string' ? e.name : 'Error', secrets);
  const message = scrub(typeof e?.message === 'string' ? e.message : String(err), secrets);
  if (err instanceof LeaseLostError) return { outcome: 'lease_lost', status: 'lease_lost', errorClass: 'lease_lost', errorName: name, errorMessage: message };
  const kind = classifyError(err, def.classify).kind;
  const code = typeof e?.code === 'string' ? e.code : '';
  const errorClass = TAXONOMY.has(code) ? code : kind;
  const status = kind === 'permanent' || job.attempt >= job.maxAttempts ? 'dead' : 'retry';
  return { outcome: 'failed', status, errorClass, errorName: name, errorMessage: message };
}
