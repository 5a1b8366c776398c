/** `rebound worker --processes N`: the supervisor side of the worker command (runtime/supervisor.ts). */
import type { Command } from 'commander';
import { defaultLogger } from '../../rebound.ts';
import { superviseWorkers } from '../../runtime/supervisor.ts';
import { globals, UsageError } from '../context.ts';

export interface SupervisorCliOptions {
  jobs: string;
  processes: number;
  concurrency: number;
  queues?: string[];
  drain?: boolean;
  coordinator: boolean;
  leaderLeaseMs?: number;
  livenessTimeout?: number;
  restartDelay?: number;
  timeoutGrace?: number;
}

export async function superviseFromCli(o: SupervisorCliOptions, cmd: Command): Promise<void> {
  if (o.processes < 1 || o.processes > 256) throw new UsageError('--processes must be from 1 to 256');
  const workerArgs = [...(o.coordinator ? [] : ['--no-coordinator']), ...(o.leaderLeaseMs ? ['--leader-lease-ms', String(o.leaderLeaseMs)] : [])];
  const logger = defaultLogger();
  const supervisor = superviseWorkers({
    jobsFile: o.jobs,
    processes: o.processes,
    store: globals(cmd).store,
    concurrency: o.concurrency,
    queues: o.queues,
    drain: o.drain,
    workerArgs,
    livenessTimeoutMs: o.livenessTimeout,
    restartBaseMs: o.restartDelay,
    timeoutGraceMs: o.timeoutGrace,
    logger,
  });
  const shutdown = () => void supervisor.stop();
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  logger.info({ processes: o.processes }, 'supervisor started');
  await supervisor.done;
  logger.info({}, 'supervisor stopped');
}
