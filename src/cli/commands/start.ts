import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import type { JobDefinition } from '../../define.ts';
import { resolveStoreUrl } from '../../store/open.ts';
import { startOperator } from '../../server/start.ts';
import { globals, parseIntOption, UsageError } from '../context.ts';
import { loadJobs } from '../load-jobs.ts';

interface Options {
  jobs?: string;
  port: number;
  host: string;
  processes: number;
  concurrency: number;
  demo?: boolean;
}

export function register(program: Command) {
  program
    .command('start')
    .description('run the HTTP API, the dashboard, the workers and the maintenance work in one command')
    .option('--jobs <file>', 'module whose default export maps type names to job definitions')
    .option('--port <n>', 'port to listen on (0: any free port)', parseIntOption('--port'), 7070)
    .option('--host <addr>', 'address to listen on; anything but loopback needs API tokens', '127.0.0.1')
    .option('--processes <n>', 'workers to run', parseIntOption('--processes'), 1)
    .option('--concurrency <n>', 'jobs each worker runs at once', parseIntOption('--concurrency'), 10)
    .option('--demo', 'run the self-healing demo scenario (orders, payment outages, poison messages)')
    .action(async (o: Options, cmd: Command) => {
      if (o.port < 0 || o.port > 65535) throw new UsageError('--port must be from 0 to 65535');
      if (o.processes < 1) throw new UsageError('--processes must be at least 1');
      if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
      let store = resolveStoreUrl(globals(cmd).store);
      const jobs: JobDefinition[] = o.jobs ? await loadJobs(o.jobs) : [];
      let extra;
      if (o.demo) {
        // The demo fails on purpose all the time: its story is on the dashboard, so the terminal stays quiet unless asked.
        process.env.REBOUND_LOG_LEVEL ??= 'silent';
        const demo = await import('../../demo/scenario.ts');
        // The demo starts from an empty store of its own, unless told to use another.
        if (!globals(cmd).store && !process.env.REBOUND_STORE) {
          store = demo.DEMO_STORE;
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${store.slice('sqlite:'.length)}${suffix}`, { force: true });
        }
        jobs.push(...demo.demoJobs());
        extra = demo.startDemo;
      }
      const running = await startOperator({
        store,
        jobs,
        host: o.host,
        port: o.port,
        processes: o.processes,
        concurrency: o.concurrency,
        extra,
        say: (line) => process.stdout.write(`${line}\n`),
      });
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      process.stdout.write('stopping…\n');
      await running.close();
    });
}
