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
import { abortExperiments, runExperiment, type ExperimentConfig } from './harness.ts';
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

/**
 * The full experiments, sized so the whole run takes a few minutes on a
 * 2-core machine: the bulk on each store with the harness restarting killed
 * workers at once, then a supervised run (`rebound worker --processes`) with the
 * supervisor itself killed, kept under the supervisor's crash-loop threshold
 * (more than 5 crashes a minute slows its restarts to 30 s, by design).
 */
export function experiments(stores: ('sqlite' | 'postgres')[], jobs: number, seed: number): ExperimentConfig[] {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const bulk = (store: 'sqlite' | 'postgres', n: number): ExperimentConfig => {
    const scale = n / 20_000;
    const rare = (k: number) => Math.max(2, Math.round(k * scale));
    const windowMs = Math.max(30_000, Math.round(100_000 * scale));
    return {
      store,
      seed,
      workers: 4,
      concurrency: 16,
      mix: { jobs: n, slow: rare(200), flaky: rare(600), hang: rare(100), block: rare(20), permanent: rare(100), exhausted: rare(100), poison: rare(6) },
      enqueueOverMs: Math.round(windowMs * 0.8),
      faultWindowMs: windowMs,
      faults: { killWorker: 24, killSupervisor: 0, stopWorker: 3, downstreamOutage: 2, dbRestart: 1, dbTerminate: 3, stopMs: 5000, outageMs: 3000, dbDownMs: 2000 },
      quiesceTimeoutMs: 120_000,
      log,
    };
  };
  const runs = stores.map((store) => bulk(store, store === 'postgres' ? jobs : Math.round(jobs * 0.3)));
  runs.push({
    store: stores.includes('postgres') ? 'postgres' : 'sqlite',
    seed: seed + 1,
    supervised: true,
    workers: 4,
    concurrency: 16,
    mix: { jobs: Math.round(jobs * 0.15), slow: 20, flaky: 60, hang: 5, block: 2, permanent: 10, exhausted: 10, poison: 0 },
    enqueueOverMs: 50_000,
    faultWindowMs: 65_000,
    faults: { killWorker: 3, killSupervisor: 2, stopWorker: 1, downstreamOutage: 1, dbRestart: 0, dbTerminate: 1, stopMs: 5000, outageMs: 3000, dbDownMs: 2000 },
    quiesceTimeoutMs: 120_000,
    log,
  });
  return runs;
}

// Ctrl-C or SIGTERM: stop the workers and the experiment's own database before leaving.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stdout.write(`\n${sig}: cleaning up\n`);
    void abortExperiments().finally(() => process.exit(130));
  });
}

const verdicts: Verdict[] = [];
for (const config of experiments(stores as ('sqlite' | 'postgres')[], jobs, seed)) {
  const verdict = await runExperiment(config);
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
