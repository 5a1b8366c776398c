/**
 * A TypeScript jobs file in a project whose package.json is CommonJS (no
 * "type": "module"), loaded by the real CLI: it loads as an ES module, and it
 * shares the CLI's copy of Rebound (a workflow's durable timer, a Snooze the
 * worker recognises by class, sleeps instead of failing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRebound } from '../src/index.ts';
import { runCli } from './helpers/cli.ts';
import { dropStore, freshStoreUrl } from './helpers/stores.ts';

const LIBRARY = pathToFileURL(join(import.meta.dirname, '../src/index.ts')).href;

describe('a .ts jobs file in a CommonJS project', () => {
  let dir: string;
  let url: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rebound-cjs-'));
    writeFileSync(join(dir, 'package.json'), '{"name":"x"}\n');
    url = freshStoreUrl('sqlite');
  });
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropStore(url);
  });

  it('loads, enqueues, and runs a job and a workflow that sleeps', async () => {
    writeFileSync(join(dir, 'greeting.ts'), 'export const greet = (name: string): string => `hello ${name}`;\n');
    writeFileSync(
      join(dir, 'jobs.ts'),
      `import { defineJob, defineWorkflow } from '${LIBRARY}';
import { greet } from './greeting.ts';

export default {
  hello: defineJob('hello', { handler: async (p: { name: string }) => greet(p.name) }),
  nap: defineWorkflow('nap', {
    run: async (ctx) => {
      await ctx.sleep(50);
      return 'rested';
    },
  }),
};
`,
    );
    const cli = (...args: string[]) => runCli(['--store', url, ...args, '--jobs', join(dir, 'jobs.ts')]);
    const hello = await cli('enqueue', 'hello', '{"name":"ada"}', '--json');
    expect(hello.stderr).toBe('');
    expect(hello.code).toBe(0);
    expect((await cli('enqueue', 'nap', '{}')).code).toBe(0);
    expect((await cli('worker', '--drain')).code).toBe(0);
    const r = await createRebound({ store: url });
    try {
      const jobs = await r.listJobs({});
      expect(jobs.map((j) => [j.type, j.state, j.result, j.attempt])).toEqual(
        expect.arrayContaining([
          ['hello', 'completed', 'hello ada', 1],
          ['nap', 'completed', 'rested', 1],
        ]),
      );
    } finally {
      await r.close();
    }
  });

  it('refuses a jobs file that fails to load with a config error (exit 2) that says what a jobs file must be', async () => {
    writeFileSync(join(dir, 'jobs.ts'), `throw new Error('DATABASE_URL is not set');\nexport default {};\n`);
    const res = await runCli(['--store', url, 'enqueue', 'hello', '{}', '--jobs', join(dir, 'jobs.ts')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: config: --jobs: cannot load .*jobs\.ts: DATABASE_URL is not set \(a jobs file is loaded as an ES module/);
  });
});
