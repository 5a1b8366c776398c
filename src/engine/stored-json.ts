/**
 * What a handler hands us to keep, as every store keeps it. PostgreSQL refuses U+0000 and unpaired UTF-16
 * surrogates in text and jsonb; SQLite keeps them. Both stores must agree, and a refused write must never
 * happen after the work is done (a failed completion once made the job run again, and failed every other
 * job in its completion batch with it). So:
 * - a value (a job's result, a step's result, a `ctx.once` value) that cannot be kept fails the attempt for
 *   good, naming what and why: a retry would redo the work and fail the same way;
 * - a text we must keep whatever it holds (an error's message and stack) has those characters replaced by U+FFFD.
 */
import { UNSTORABLE } from '../config/options.ts';
import { PermanentError } from '../errors.ts';
import type { Json } from '../job.ts';

const EVERY_UNSTORABLE = new RegExp(UNSTORABLE.source, 'g');
/** The same, escaped in JSON text (an odd run of backslashes before the `u`): JSON.stringify writes them so and nothing else. */
export const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/;

/** `value` as JSON a store keeps (undefined is null), or a PermanentError that begins with `what`. */
export function storedJson(value: unknown, what: string): Json {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new PermanentError(`${what} is not JSON-serializable (${(err as Error).message})`, { code: 'unstorable_result' });
  }
  if (text === undefined) throw new PermanentError(`${what} is not JSON-serializable (a ${typeof value})`, { code: 'unstorable_result' });
  if (text.includes('\\u') && UNSTORABLE_ESCAPE.test(text)) {
    throw new PermanentError(`${what} holds U+0000 or an unpaired UTF-16 surrogate, which PostgreSQL cannot store; encode binary data (base64) first`, {
      code: 'unstorable_result',
    });
  }
  return JSON.parse(text) as Json;
}

/** `s` with U+0000 and unpaired surrogates replaced by U+FFFD. */
export function storableText(s: string): string {
  return s.replace(EVERY_UNSTORABLE, '\uFFFD');
}
