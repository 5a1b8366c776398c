/**
 * Every error leaves the server as `{ error: { code, message, field? } }`.
 * Library errors map by their `code`; bad bodies are 400/413/415, never 500.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../define.ts';
import { ReboundError } from '../errors.ts';

export class ApiError extends ReboundError {
  readonly status: number;
  readonly field?: string;
  readonly retryAfterSec?: number;
  constructor(status: number, code: string, message: string, opts: { field?: string; retryAfterSec?: number } = {}) {
    super(code, message);
    this.status = status;
    this.field = opts.field;
    this.retryAfterSec = opts.retryAfterSec;
  }
}

export function notImplemented(what: string): ApiError {
  return new ApiError(501, 'not_implemented', `${what} is not available in this build yet`);
}

export function badRequest(field: string, message: string): ApiError {
  return new ApiError(400, 'validation', `${field}: ${message}`, { field });
}

const STATUS_BY_CODE: Record<string, number> = {
  validation: 400,
  config: 400,
  not_found: 404,
  idempotency_conflict: 409,
  invalid_state: 409,
  queue_full: 429,
};

const CODE_BY_STATUS: Record<number, string> = { 404: 'not_found', 413: 'payload_too_large', 414: 'uri_too_long', 415: 'unsupported_media_type' };

/** The library's names for what arrives over HTTP under another name. */
const HTTP_NAMES: [RegExp, string][] = [
  [/\bitems\[(\d+)\]/g, 'jobs[$1]'], // enqueueMany's items are the bulk body's jobs
  [/^((?:jobs\[\d+\]\.)?)(?:options|opts)\./, '$1'], // enqueue options are fields of the job's body
  [/^(?:filter|selection)\./, ''], // list filters and DLQ selections are query or body fields
];

function httpName(text: string): string {
  return HTTP_NAMES.reduce((t, [re, to]) => t.replace(re, to), text);
}

/** A library error's field, and the message that starts with it, in the names the caller sent. */
function httpNamed(e: { field?: string; message: string }): { field?: string; message: string } {
  if (typeof e.field !== 'string' || !e.message.startsWith(`${e.field}: `)) return e;
  const field = httpName(e.field);
  return { field, message: `${field}: ${httpName(e.message.slice(e.field.length + 2))}` };
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

export function errorBody(code: string, message: string, field?: string): ErrorBody {
  return { error: { code, message, ...(field ? { field } : {}) } };
}

/** The server's error handler: what is not the caller's fault is written to `logger` (the server answers "see its log"). */
export function errorHandler(logger: Logger) {
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => handleError(err, req, reply, logger);
}

function handleError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply, logger: Logger) {
  const e = err as FastifyError & { field?: string; retryAfterMs?: number; retryAfterSec?: number; status?: number };
  if (err instanceof ApiError) {
    if (err.retryAfterSec) reply.header('Retry-After', String(err.retryAfterSec));
    return reply.status(err.status).send(errorBody(err.code, err.message, err.field));
  }
  // Library errors (and errors from another copy of the library) carry a string code.
  if (typeof e.code === 'string' && STATUS_BY_CODE[e.code]) {
    const status = STATUS_BY_CODE[e.code];
    if (status === 429) reply.header('Retry-After', String(Math.max(1, Math.ceil((e.retryAfterMs ?? 1000) / 1000))));
    const { field, message } = httpNamed(e);
    return reply.status(status).send(errorBody(e.code, message, field));
  }
  if (e.validation) {
    const v = e.validation[0];
    const field = String(v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || (v?.params as { missingProperty?: string })?.missingProperty || e.validationContext || 'body';
    return reply.status(400).send(errorBody('validation', e.message, field));
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'bad_request';
    return reply.status(status).send(errorBody(code, e.message));
  }
  logger.error({ err, method: req.method, url: req.url.split('?')[0] }, `${req.method} ${req.url.split('?')[0]} failed: ${err.message}`);
  return reply.status(500).send(errorBody('internal', 'the server failed to handle this request; see its log'));
}

export function handleNotFound(req: FastifyRequest, reply: FastifyReply) {
  return reply.status(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`));
}
