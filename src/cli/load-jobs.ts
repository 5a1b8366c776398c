/**
 * Loads a jobs file: a JavaScript or TypeScript module whose default export
 * maps type names to definitions (from defineJob, or plain objects of that shape),
 * or is an array of definitions.
 */
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toDefinitions, type JobDefinition } from '../define.ts';
import { ConfigError } from '../errors.ts';

/**
 * A loader hook that makes one URL an ES module. Node reads a .ts file in a
 * package without "type": "module" as CommonJS, which the CLI's tsx hooks cannot
 * load (ERR_REQUIRE_CYCLE_MODULE). tsx's tsImport() would load it, but as a second
 * copy of everything it imports: the file's Rebound would not be the CLI's, and the
 * worker recognises what handlers throw (a workflow's Snooze) by class.
 */
const AS_ESM = `data:text/javascript,${encodeURIComponent(
  'let target; export function initialize(url) { target = url; }\n' +
    'export async function resolve(s, c, next) { const r = await next(s, c); return r.url === target ? { ...r, format: "module" } : r; }',
)}`;

export async function loadJobs(file: string): Promise<JobDefinition[]> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ConfigError(`--jobs: file ${file} does not exist`);
  const url = pathToFileURL(path).href;
  if (/\.tsx?$/.test(path)) register(AS_ESM, { data: url });
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (err) {
    throw new ConfigError(
      `--jobs: cannot load ${file}: ${(err as Error).message} (a jobs file is loaded as an ES module, a .ts one whatever ` +
        'package.json says: fix the error, use import/export, and default-export the job definitions)',
    );
  }
  const exported = mod.default ?? mod.jobs;
  if (!exported || typeof exported !== 'object') {
    throw new ConfigError(`--jobs: ${file} must default-export an object mapping type names to job definitions`);
  }
  return toDefinitions(exported as Parameters<typeof toDefinitions>[0]);
}
