/** What every command shares: the store URL, the output mode, and opening a client. */
import { InvalidArgumentError, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { ConfigError, ValidationError } from '../errors.ts';
import { createRebound, type Rebound } from '../rebound.ts';
import type { JobDefinition } from '../define.ts';
import { resolveStoreUrl, sqlitePathOf } from '../store/open.ts';
import { loadJobs } from './load-jobs.ts';

export interface GlobalOptions {
  store?: string;
  json?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export interface ClientOptions {
  /** A jobs file whose definitions the client holds. */
  jobsFile?: string;
  /** The command only reads: a SQLite store that does not exist is refused instead of created empty. */
  readOnly?: boolean;
}

export async function openClient(cmd: Command, { jobsFile, readOnly }: ClientOptions = {}): Promise<Rebound> {
  const store = resolveStoreUrl(globals(cmd).store);
  if (readOnly) refuseMissingSqlite(store);
  const jobs: JobDefinition[] = jobsFile ? await loadJobs(jobsFile) : [];
  return createRebound({ store, jobs });
}

function refuseMissingSqlite(url: string): void {
  const path = sqlitePathOf(url);
  if (!path || path === ':memory:' || existsSync(path)) return;
  throw new ConfigError(`--store: no SQLite store at ${path} (this command only reads; \`rebound migrate\` or a worker creates one)`);
}

/** Runs `fn` with a client and always closes it. */
export async function withClient<T>(cmd: Command, fn: (r: Rebound) => Promise<T>, options: ClientOptions = {}): Promise<T> {
  const rebound = await openClient(cmd, options);
  try {
    return await fn(rebound);
  } finally {
    await rebound.close();
  }
}

/** An integer flag; with `range`, one outside [min, max] is refused naming the flag. */
export function parseIntOption(name: string, range?: { min: number; max: number }) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${value}"`);
    if (range && (n < range.min || n > range.max)) throw new InvalidArgumentError(`${name} must be from ${range.min} to ${range.max}, got ${n}`);
    return n;
  };
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90d`, `12h`, `30m`, `45s` or whole milliseconds (commander names the flag in its refusal). */
export function parseDuration(value: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (m[2] && m[2] !== 'ms' ? UNIT_MS[m[2] as keyof typeof UNIT_MS] : 1) : NaN;
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`"${value}" must be a duration such as 90d, 12h, 30m or 45s (or whole milliseconds)`);
  return ms;
}

/** The range of every `--limit` (the library's MAX_LIST_LIMIT). */
export const LIMIT_RANGE = { min: 1, max: 100_000 };

/** The range of every `--processes` (worker, start). */
export const PROCESSES_RANGE = { min: 1, max: 256 };

/** The range of every `--concurrency`, as `work()` takes it. */
export const CONCURRENCY_RANGE = { min: 1, max: 10_000 };

/** Which flag sets which library field, for a command's errors: `{ 'options.delayMs': '--delay' }`. */
export type FlagFields = Record<string, string>;

/** A ValidationError on a field a flag set, as a usage error naming that flag; any other error as it is. */
export function inFlagTerms(err: unknown, flags: FlagFields): unknown {
  const flag = err instanceof ValidationError ? flags[err.field] : undefined;
  if (!flag) return err;
  return new UsageError(`${flag}: ${(err as ValidationError).message.slice((err as ValidationError).field.length + 2)}`);
}

/** Runs `fn`; its errors on fields the flags set name the flags (inFlagTerms). */
export async function namingFlags<T>(flags: FlagFields, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw inFlagTerms(err, flags);
  }
}

let exitOnReturn = false;

/**
 * For commands that run handlers (`worker`, `start`): the process ends when the command returns. A handler that
 * ignored its abort (past its timeout, or the stop's grace) has had its job failed or released, but its timer or
 * socket would keep the process alive after "worker stopped", until it returned by itself, or never.
 */
export function exitWhenDone(): void {
  exitOnReturn = true;
}

export const exitsWhenDone = () => exitOnReturn;

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {}
