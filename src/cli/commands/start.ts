import type { Command } from 'commander';
import { loadSchedules } from '../../coordination/load-schedules.ts';
import type { JobDefinition } from '../../define.ts';
import { resolveStoreUrl, sqlitePathOf } from '../../store/open.ts';
import { CONCURRENCY_RANGE, exitWhenDone, globals, parseIntOption, PROCESSES_RANGE, UsageError } from '../context.ts';
import { ConfigError } from '../../errors.ts';
import { loadJobs } from '../load-jobs.ts';
import { onStopSignals } from '../stop-signals.ts';
import type { Running } from '../../server/start.ts';

interface Options {
  jobs?: string;
  port: number;
  host: string;
  processes?: number;
  concurrency: number;
  demo?: boolean;
}

export function register(program: Command) {
  program
    .command('start')
    .description('run the HTTP API, the dashboard, the workers and the maintenance work in one command')
    .option('--jobs <file>', 'module whose default export maps type names to job definitions (and may export schedules)')
    .option('--port <n>', 'port to listen on (0: any free port)', parseIntOption('--port'), 7070)
    .option('--host <addr>', 'address to listen on; anything but loopback needs API tokens', '127.0.0.1')
    .option('--processes <n>', 'run the workers in N supervised processes (restarted when they crash), 1 to 256; default: in this process', parseIntOption('--processes', PROCESSES_RANGE))
    .option('--concurrency <n>', 'jobs each worker runs at once, 1 to 10000', parseIntOption('--concurrency', CONCURRENCY_RANGE), 10)
    .option('--demo', 'run the self-healing demo scenario (orders, payment outages, poison messages, a crashing worker)')
    .action(async (o: Options, cmd: Command) => {
      exitWhenDone();
      if (o.port < 0 || o.port > 65535) throw new UsageError('--port must be from 0 to 65535');
      if (o.demo && o.jobs) throw new UsageError('--demo brings its own jobs; leave out --jobs');
      // Listen before the first await: a SIGTERM while Rebound starts stops it cleanly once it is up.
      let running: Running | undefined;
      let hurried = false;
      const stopAsked = new Promise<void>((resolve) => {
        onStopSignals({
          stop: () => resolve(),
          hurry: () => {
            process.stdout.write('second signal: the running jobs are aborted and released now; a third ends every process at once\n');
            hurried = true;
            running?.hurry();
          },
          end: () => running?.kill(),
        });
      });
      let store = resolveStoreUrl(globals(cmd).store);
      let jobsFile = o.jobs;
      let processes = o.processes;
      let extra;
      let guide: string[] = [];
      if (o.demo) {
        // The demo fails on purpose all the time: its story is on the dashboard, so the terminal stays quiet unless asked.
        process.env.REBOUND_LOG_LEVEL ??= 'silent';
        // Every worker process agrees on when the simulated payment service is down.
        process.env.REBOUND_DEMO_EPOCH ??= String(Date.now());
        const demo = await import('../../demo/scenario.ts');
        // The demo starts from an empty store of its own, unless told to use another.
        const own = !globals(cmd).store && !process.env.REBOUND_STORE;
        if (own) store = (await import('../../demo/store.ts')).freshDemoStore();
        guide = demo.demoGuide(own ? sqlitePathOf(store) : null);
        jobsFile = demo.DEMO_JOBS_FILE;
        processes ??= 2;
        extra = demo.startDemo;
      }
      const jobs: JobDefinition[] = jobsFile ? await loadJobs(jobsFile) : [];
      // Loaded here: the server and its framework are the heaviest part of the CLI, and only `start` needs them.
      const { startOperator } = await import('../../server/start.ts');
      running = await startOperator({
        store,
        jobs,
        schedules: jobsFile ? await loadSchedules(jobsFile) : [],
        jobsFile,
        host: o.host,
        port: o.port,
        processes,
        concurrency: o.concurrency,
        extra,
        say: (line) => process.stdout.write(`${line}\n`),
      }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE') throw err;
        throw new ConfigError(
          `port ${o.port} on ${o.host} is in use (another \`rebound start\` or \`npm start\`?): ` +
            'stop it, or choose another port with --port N (npm start -- --port N), or --port 0 for any free one',
        );
      });
      for (const line of guide) process.stdout.write(`${line}\n`);
      // Supervised workers that refused their configuration (exit 2) are not restarted: the server stops with them.
      await Promise.race([stopAsked, running.supervisor?.done ?? new Promise<void>(() => {})]);
      process.stdout.write('stopping… (a second Ctrl-C releases the running jobs now)\n');
      if (hurried) running.hurry();
      await running.close();
      const failed = running.supervisor?.failure;
      if (failed) {
        throw new ConfigError(`worker process ${failed.pid} (slot ${failed.slot}) exited with a configuration error (exit 2; its error is above); the workers and the server stopped`);
      }
    });
}
