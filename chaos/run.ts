/**
 * `npm run chaos`: the full experiment, on PostgreSQL (every fault) and on
 * SQLite (every fault that applies to a file store). Prints the figures and,
 * with --write, puts them in docs/reliability.md between the figure markers.
 *
 *   npm run chaos                      # both stores, full size
 *   npm run chaos -- --store sqlite    # one store
 *   npm run chaos -- --jobs 5000       # a smaller run
 *   npm run chaos -- --seed 7 --write
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { runExperiment, type ExperimentConfig } from './harness.ts';
import { toMarkdown, type Verdict } from './report.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    jobs: { type: 'string' },
    seed: { type: 'string' },
    write: { type: 'boolean' },
  },
});

const jobs = Number(values.jobs ?? 20_000);
const seed = Number(values.seed ?? Date.now() % 100_000);
if (!Number.isInteger(jobs) || jobs < 100 || !Number.isInteger(seed)) {
  process.stderr.write('error: --jobs must be an integer of at least 100, --seed an integer\n');
  process.exit(2);
}
const stores = values.store ? [values.store] : ['postgres', 'sqlite'];
if (!stores.every((s) => s === 'postgres' || s === 'sqlite')) {
  process.stderr.write('error: --store must be postgres or sqlite\n');
  process.exit(2);
}

/** The full experiment: sized so one store takes two to four minutes on a 2-core machine. */
export function fullConfig(store: 'sqlite' | 'postgres', jobs: number, seed: number): ExperimentConfig {
  const scale = jobs / 20_000;
  const rare = (n: number) => Math.max(2, Math.round(n * scale));
  const windowMs = Math.max(30_000, Math.round(100_000 * scale));
  return {
    store,
    seed,
    workers: 4,
    concurrency: 16,
    mix: { jobs, slow: rare(200), flaky: rare(600), hang: rare(100), block: rare(20), permanent: rare(100), exhausted: rare(100), poison: rare(6) },
    enqueueOverMs: Math.round(windowMs * 0.8),
    faultWindowMs: windowMs,
    faults: {
      killWorker: 24,
      stopWorker: 3,
      downstreamOutage: 2,
      dbRestart: 1,
      dbTerminate: 3,
      stopMs: 5000,
      outageMs: 3000,
      dbDownMs: 2000,
    },
    quiesceTimeoutMs: 180_000,
    log: (line) => process.stdout.write(`${line}\n`),
  };
}

const verdicts: Verdict[] = [];
for (const store of stores as ('sqlite' | 'postgres')[]) {
  const verdict = await runExperiment(fullConfig(store, jobs, seed));
  verdicts.push(verdict);
  process.stdout.write(`\n${toMarkdown(verdict)}\n\n`);
}

if (values.write) {
  const file = new URL('../docs/reliability.md', import.meta.url);
  const doc = readFileSync(file, 'utf8');
  const machine = `${hostname()}: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
  const figures = [
    '<!-- figures:start -->',
    `Run of ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
    `Command: \`npm run chaos -- --jobs ${jobs} --seed ${seed}\`.`,
    '',
    ...verdicts.map(toMarkdown),
    '<!-- figures:end -->',
  ].join('\n');
  writeFileSync(file, doc.replace(/<!-- figures:start -->[\s\S]*<!-- figures:end -->/, figures));
  process.stdout.write('figures written to docs/reliability.md\n');
}

process.exitCode = verdicts.every((v) => v.ok) ? 0 : 1;
