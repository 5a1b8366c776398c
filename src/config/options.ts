/**
 * Building blocks of the option schemas (defineJob, enqueue, work, createRebound):
 * bounds shared by every entry point, and one way to turn zod's first issue
 * into a field name and a message that says what to do.
 */
import { z } from 'zod';

/** The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Ten years: the longest delay, retention or key lifetime a job may ask for (times are stored as epoch milliseconds). */
export const MAX_DURATION_MS = 10 * 365 * 24 * 3600_000;

export const PRIORITY_BOUND = 1_000_000;

/** An integer in [min, max], with one message for every way to miss it. */
export function intIn(min: number, max: number, error = `must be an integer from ${min} to ${max}`) {
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** Milliseconds given to a timer: refused beyond MAX_TIMER_MS, which Node would turn into 1 ms. */
export const timerMs = (min: number) =>
  intIn(min, MAX_TIMER_MS, `must be whole milliseconds from ${min} to ${MAX_TIMER_MS} (about 24.8 days, the longest timer Node keeps)`);

/** Milliseconds added to a stored time: at most MAX_DURATION_MS. */
export const durationMs = intIn(0, MAX_DURATION_MS, `must be whole milliseconds from 0 to ${MAX_DURATION_MS} (ten years)`);

export const priority = intIn(-PRIORITY_BOUND, PRIORITY_BOUND);

/** U+0000 and unpaired surrogates cannot be stored by PostgreSQL (text and jsonb); refuse them on every store alike. */
export const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const UNSTORABLE_MESSAGE = 'must not contain U+0000 or unpaired UTF-16 surrogates';
export const storable = (s: string) => !UNSTORABLE.test(s);

/** Text a store keeps: `min` to `max` characters, every one storable. */
export const text = (min: number, max: number) => z.string().min(min).max(max).refine(storable, UNSTORABLE_MESSAGE);

export const queueName = text(1, 128);

/** How long finished jobs are kept, by final state (defineJob's `retention`, and the coordinator's default). */
/** A retry policy (defineJob's `retry`, and a workflow step's). */
export const retrySchema = z
  .object({
    maxAttempts: intIn(1, 10_000).optional(),
    backoff: z.enum(['exponential', 'linear', 'fixed']).optional(),
    baseMs: durationMs.optional(),
    maxMs: durationMs.optional(),
    jitter: z.enum(['full', 'equal', 'none']).optional(),
  })
  .strict();

export const retentionSchema = z.object({ completedMs: durationMs.optional(), deadMs: durationMs.optional(), cancelledMs: durationMs.optional() }).strict();

export const fn = z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function', 'must be a function');

/**
 * The first problem zod found, as a field path (below `root`) and a message. An unknown key names
 * the nearest known option (`known` may hold nested ones, such as `retry.maxAttempts`).
 */
export function firstProblem(error: z.ZodError, root: string, known: readonly string[] = []): { field: string; message: string } {
  const issue = chosenBranch(error.issues[0]);
  const at = [root, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
    const here = known.filter((k) => k.startsWith(prefix));
    const near = nearest(key, here);
    const siblings = here.filter((k) => !k.slice(prefix.length).includes('.'));
    const hint = near ? `did you mean ${near}?` : siblings.length ? `the options are ${siblings.join(', ')}` : '';
    return { field: `${at ? `${at}.` : ''}${key}`, message: `unknown option${hint ? `; ${hint}` : ''}` };
  }
  return { field: at || 'options', message: issue.message };
}

/** In a union, the issue of the one alternative the value has the shape of (an array, an object...), if one has. */
function chosenBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const shaped = issue.errors.filter((branch) => !(branch[0]?.code === 'invalid_type' && branch[0].path.length === 0));
  if (shaped.length !== 1) return issue;
  const inner = chosenBranch(shaped[0][0]);
  return { ...inner, path: [...issue.path, ...inner.path] };
}

/** The known option whose name (or last segment) is the key, or nearest to it: another case, or up to two edits away. */
function nearest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  const last = (name: string) => name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  const exact = known.find((name) => last(name) === k);
  if (exact) return exact;
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = editDistance(k, last(name));
    if (d <= 2 && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
