/** `rebound worker --processes N`: the supervisor side of the worker command (runtime/supervisor.ts). */
import type { Command } from 'commander';
import { checkCoordinatorOptions } from '../../config/coordinator-options.ts';
import { loadSchedules } from '../../coordination/load-schedules.ts';
import { ConfigError } from '../../errors.ts';
import { defaultLogger } from '../../rebound.ts';
import { superviseWorkers } from '../../runtime/supervisor.ts';
import { globals, namingFlags } from '../context.ts';
import { onStopSignals } from '../stop-signals.ts';
import { loadJobs } from '../load-jobs.ts';
import { coordinatorOptions, COORDINATOR_FLAGS } from '../coordinator-flags.ts';

const FLAGS = {
  processes: '--processes',
  concurrency: '--concurrency',
  queues: '--queues',
  livenessTimeoutMs: '--liveness-timeout',
  restartBaseMs: '--restart-delay',
  timeoutGraceMs: '--timeout-grace',
  ...COORDINATOR_FLAGS,
};

export interface SupervisorCliOptions {
  jobs: string;
  processes: number;
  concurrency: number;
  queues?: string[];
  drain?: boolean;
  coordinator: boolean;
  leaderLeaseMs?: number;
  auditRetention?: number;
  statsRetention?: number;
  livenessTimeout?: number;
  restartDelay?: number;
  timeoutGrace?: number;
}

export async function superviseFromCli(o: SupervisorCliOptions, cmd: Command): Promise<void> {
  // What each worker process would refuse is refused here, once, instead of by N processes restarted forever.
  await loadJobs(o.jobs);
  if (o.coordinator) {
    await loadSchedules(o.jobs);
    await namingFlags(FLAGS, () => checkCoordinatorOptions(coordinatorOptions(o)));
  }
  const workerArgs = [
    ...(o.coordinator ? [] : ['--no-coordinator']),
    ...(o.leaderLeaseMs !== undefined ? ['--leader-lease-ms', String(o.leaderLeaseMs)] : []),
    ...(o.auditRetention !== undefined ? ['--audit-retention', String(o.auditRetention)] : []),
    ...(o.statsRetention !== undefined ? ['--stats-retention', String(o.statsRetention)] : []),
  ];
  const logger = defaultLogger();
  const supervisor = await namingFlags(FLAGS, () => superviseWorkers({
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
  }));
  onStopSignals({
    stop: () => void supervisor.stop(),
    hurry: () => {
      logger.warn({}, 'second signal: the worker processes abort and release their running jobs now; a third kills them');
      void supervisor.hurry();
    },
    end: () => supervisor.kill(),
  });
  logger.info({ processes: o.processes }, 'supervisor started');
  await supervisor.done;
  logger.info({}, 'supervisor stopped');
  const failed = supervisor.failure;
  if (failed) {
    throw new ConfigError(`worker process ${failed.pid} (slot ${failed.slot}) exited with a configuration error (exit 2; its error is above); the supervisor stopped instead of restarting it`);
  }
}
