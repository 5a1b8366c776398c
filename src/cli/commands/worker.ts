import { InvalidArgumentError, type Command } from 'commander';
import { openClient, parseIntOption, UsageError } from '../context.ts';

interface Options {
  jobs?: string;
  concurrency: number;
  queues?: string[];
  drain?: boolean;
}

export function register(program: Command) {
  program
    .command('worker')
    .description('run a worker for the job types in a jobs file')
    .option('--jobs <file>', 'module whose default export maps type names to job definitions')
    .option('--concurrency <n>', 'jobs run at once (default 10)', parseIntOption('--concurrency'), 10)
    .option('--queues <a,b>', 'queues to take jobs from (default: those the jobs file names)', (v: string) => {
      const qs = v.split(',').map((q) => q.trim()).filter(Boolean);
      if (qs.length === 0) throw new InvalidArgumentError('--queues needs at least one queue name');
      return qs;
    })
    .option('--drain', 'exit 0 once no job is available, scheduled within a second, or running')
    .action(async (o: Options, cmd: Command) => {
      if (!o.jobs) throw new UsageError('worker: --jobs FILE is required (a module that default-exports your job definitions)');
      if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
      const rebound = await openClient(cmd, o.jobs);
      const worker = rebound.work({ concurrency: o.concurrency, queues: o.queues, drain: o.drain });
      const shutdown = () => void worker.stop();
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
      rebound.logger.info({ worker: worker.id, types: [...rebound.definitions.keys()] }, 'worker started');
      await worker.done;
      await rebound.close();
      rebound.logger.info({ worker: worker.id }, 'worker stopped');
    });
}
