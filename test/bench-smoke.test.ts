/**
 * Keeps the benchmark harness from rotting: a smoke run (a few hundred jobs
 * through every workload) of Rebound on both stores, of the raw-SQL
 * ceilings and of the diagnostic rebound-store-pg, which need no peer libraries (those live in bench/package.json and
 * are installed only by `npm run bench`). Nothing here is timed: the run must
 * finish, every system must produce figures, and none may fail.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { databaseUrl } from './helpers/stores.ts';

const SYSTEMS = ['rebound-pg', 'rebound-sqlite', 'raw-pg', 'raw-sqlite', 'rebound-store-pg'];

describe('benchmark harness', () => {
  it('runs every workload at smoke size for Rebound and the raw ceilings, and reports each system', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--smoke', '--no-save', '--systems', SYSTEMS.join(',')],
      { env: { ...process.env, DATABASE_URL: databaseUrl() }, encoding: 'utf8', timeout: 280_000 },
    );
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    const out = run.stdout;
    for (const title of ['Throughput', 'Enqueue', 'Pickup latency', 'Backlog', 'Scale-out', 'Memory']) expect(out).toContain(title);
    for (const name of ['rebound-pg', 'rebound-sqlite', 'rebound-store-pg']) {
      // A row of the throughput table: name, store, seconds, jobs/s (a number, not FAILED).
      expect(out).toMatch(new RegExp(`\\| ${name} +\\| \\w+ +\\| +[\\d.]+ \\| +[\\d,]+ \\|`));
    }
    expect(out).not.toContain('FAILED');
  }, 300_000);
});
