/**
 * Loads a jobs file: a JavaScript or TypeScript module whose default export
 * maps type names to definitions (from defineJob, or plain objects of that shape),
 * or is an array of definitions.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toDefinitions, type JobDefinition } from '../define.ts';
import { ConfigError } from '../errors.ts';

export async function loadJobs(file: string): Promise<JobDefinition[]> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ConfigError(`--jobs: file ${file} does not exist`);
  const mod = await import(pathToFileURL(path).href);
  const exported = mod.default ?? mod.jobs;
  if (!exported || typeof exported !== 'object') {
    throw new ConfigError(`--jobs: ${file} must default-export an object mapping type names to job definitions`);
  }
  return toDefinitions(exported);
}
