/** What every command shares: the store URL, the output mode, and opening a client. */
import { InvalidArgumentError, type Command } from 'commander';
import { createRebound, type Rebound } from '../rebound.ts';
import type { JobDefinition } from '../define.ts';
import { resolveStoreUrl } from '../store/open.ts';
import { loadJobs } from './load-jobs.ts';

export interface GlobalOptions {
  store?: string;
  json?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export async function openClient(cmd: Command, jobsFile?: string): Promise<Rebound> {
  const jobs: JobDefinition[] = jobsFile ? await loadJobs(jobsFile) : [];
  return createRebound({ store: resolveStoreUrl(globals(cmd).store), jobs });
}

/** Runs `fn` with a client and always closes it. */
export async function withClient<T>(cmd: Command, fn: (r: Rebound) => Promise<T>, jobsFile?: string): Promise<T> {
  const rebound = await openClient(cmd, jobsFile);
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

/** The range of every `--limit` (the library's MAX_LIST_LIMIT). */
export const LIMIT_RANGE = { min: 1, max: 100_000 };

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {}
