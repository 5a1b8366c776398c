/**
 * Turns a thrown value into the ErrorInfo we store: class, message, stack, and
 * a fingerprint that is stable for the same kind of failure (numbers, ids and
 * line numbers do not change it), so dead jobs can be grouped.
 */
import { createHash } from 'node:crypto';
import type { ErrorInfo, Json } from '../job.ts';

export function errorInfo(err: unknown, kind: string, jobType: string): ErrorInfo {
  const e = err instanceof Error ? err : new Error(typeof err === 'string' ? err : JSON.stringify(err) ?? String(err));
  const rawCode = (e as { code?: unknown }).code;
  const code = typeof rawCode === 'string' ? rawCode : undefined;
  // A redacted copy of the payload, attached by the visibility plugin so a failure can be reproduced.
  const snapshot = (e as { payloadSnapshot?: Json }).payloadSnapshot;
  return {
    kind,
    name: e.name,
    ...(code ? { code } : {}),
    message: e.message,
    stack: e.stack,
    fingerprint: fingerprint(jobType, e.name, e.message, e.stack),
    ...(snapshot !== undefined ? { payload: snapshot } : {}),
  };
}

export function fingerprint(jobType: string, name: string, message: string, stack?: string): string {
  const frames = (stack ?? '')
    .split('\n')
    .filter((l) => l.trimStart().startsWith('at '))
    .slice(0, 3)
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
