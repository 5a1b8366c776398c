/**
 * Turns a thrown value into the ErrorInfo we store: class, message, stack, and
 * a fingerprint that is stable for the same kind of failure (numbers, ids and
 * line numbers do not change it), so dead jobs can be grouped.
 */
import { createHash } from 'node:crypto';
import type { ErrorInfo, Json } from '../job.ts';
import { scrub } from '../observability/redaction.ts';
import { storableText } from './stored-json.ts';

export function errorInfo(err: unknown, kind: string, jobType: string, secrets: readonly string[] = []): ErrorInfo {
  const e = err instanceof Error ? err : asError(err);
  const rawCode = (e as { code?: unknown }).code;
  const code = typeof rawCode === 'string' ? kept(rawCode, 200) : undefined;
  // A redacted copy of the payload, attached by the visibility plugin so a failure can be reproduced.
  const snapshot = (e as { payloadSnapshot?: Json }).payloadSnapshot;
  // The payload's sensitive values (its type's `redact` paths) are scrubbed from whatever was thrown: an Error,
  // a string, a plain object.
  const name = scrub(kept(e.name, 200), secrets);
  const message = scrub(kept(e.message, MAX_MESSAGE), secrets);
  const stack = typeof e.stack === 'string' ? scrub(kept(e.stack, MAX_STACK), secrets) : undefined;
  return {
    kind,
    name,
    ...(code ? { code } : {}),
    message,
    stack,
    fingerprint: fingerprint(jobType, name, message, stack),
    ...(snapshot !== undefined ? { payload: snapshot } : {}),
  };
}

/** Characters of an error's message and stack kept: the whole text goes to the logs, not to every stored attempt. */
const MAX_MESSAGE = 8_000;
const MAX_STACK = 16_000;

/**
 * A thrown text as stored: a string (a handler may set `name` or `message` to anything), at most `max` characters,
 * with what PostgreSQL cannot store replaced (stored-json.ts). An error that could not be stored once failed its
 * job's every attempt's bookkeeping, and the job then came back as if its worker had died.
 */
function kept(v: unknown, max: number): string {
  const s = typeof v === 'string' ? v : asString(v);
  return storableText(s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s);
}

/** A thrown non-Error as an Error: a string is its message; a plain object keeps its `message`, `name` and `code`. */
function asError(v: unknown): Error {
  if (typeof v === 'string') return new Error(v);
  const o = (v !== null && typeof v === 'object' ? v : {}) as { message?: unknown; name?: unknown; code?: unknown };
  const e = new Error(typeof o.message === 'string' ? o.message : describe(v));
  if (typeof o.name === 'string') e.name = o.name;
  if (typeof o.code === 'string') Object.assign(e, { code: o.code });
  return e;
}

/** A thrown non-Error, as text: JSON where it can be (a circular object or a BigInt cannot). */
function describe(v: unknown): string {
  try {
    return JSON.stringify(v) ?? asString(v);
  } catch {
    return asString(v);
  }
}

/** String(v), which throws for an object without a prototype or with a throwing toString. */
function asString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

export function fingerprint(jobType: string, name: string, message: string, stack?: string): string {
  // The throw site only: the frames below it depend on how the throwing code was reached and resumed (Node's own
  // timer and microtask frames, an `at async` caller V8 shows or not), so with the top three one failure in one
  // line of code came out under two fingerprints, and split its dead letter queue group.
  const frames = (stack ?? '')
    .split('\n')
    .filter((l) => l.trimStart().startsWith('at ') && !l.includes('node:internal/'))
    .slice(0, 1)
    .map((l) => l.replace(/:\d+:\d+\)?$/, '').replace(/\(.*[\\/]/, '(').trim());
  const shape = normalizeMessage(message);
  return createHash('sha1').update([jobType, name, shape, ...frames].join('\n')).digest('hex').slice(0, 12);
}

/** Replaces the parts of a message that vary between occurrences of one failure. */
export function normalizeMessage(message: string): string {
  return message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\b0x[0-9a-f]+\b/gi, '<hex>')
    .replace(/\b[0-9a-f]{16,}\b/gi, '<hex>')
    .replace(/\d+(\.\d+)?/g, '<n>')
    .replace(/"[^"]*"|'[^']*'/g, '<str>');
}

/** The error recorded when a worker vanished mid-attempt. */
export function leaseExpiredError(jobType: string, worker: string | null): ErrorInfo {
  const message = `the worker${worker ? ` ${worker}` : ''} stopped renewing its lease (it crashed, was killed or froze)`;
  return { kind: 'lease_lost', name: 'LeaseExpired', code: 'lease_expired', message, fingerprint: fingerprint(jobType, 'LeaseExpired', 'lease expired') };
}
