import { InvalidArgumentError, type Command } from 'commander';
import { MAX_DEFAULT_LEASE_MS } from '../../config/coordinator-options.ts';
import { CONCURRENCY_RANGE, exitWhenDone, inFlagTerms, openClient, parseDuration, parseIntOption, PROCESSES_RANGE, UsageError } from '../context.ts';
import { isSupervised, supervisedChild } from '../../runtime/supervised-child.ts';
import { superviseFromCli } from './worker-supervisor.ts';
import { onStopSignals } from '../stop-signals.ts';
import { coordinatorOptions, COORDINATOR_FLAGS } from '../coordinator-flags.ts';
import { loadSchedules } from '../../coordination/load-schedules.ts';
import type { Worker } from '../../runtime/worker.ts';
import type { Rebound } from '../../rebound.ts';

const FLAGS = { 'options.concurrency': '--concurrency', 'options.queues': '--queues', ...COORDINATOR_FLAGS };

interface Options {
  jobs?: string;
  concurrency: number;
  queues?: string[];
  drain?: boolean;
  coordinator: boolean;
  leaderLeaseMs?: number;
  auditRetention?: number;
  statsRetention?: number;
  processes?: number;
  livenessTimeout?: number;
  restartDelay?: number;
  timeoutGrace?: number;
}

export function register(program: Command) {
  program
    .command('worker')
    .description('run a worker for the job types in a jobs file')
    .option('--jobs <file>', 'module whose default export maps type names to job definitions')
    .option('--concurrency <n>', 'jobs run at once, 1 to 10000', parseIntOption('--concurrency', CONCURRENCY_RANGE), 10)
    .option('--queues <a,b>', 'queues to take jobs from (default: those the jobs file names)', (v: string) => {
      const qs = v.split(',').map((q) => q.trim()).filter(Boolean);
      if (qs.length === 0) throw new InvalidArgumentError('--queues needs at least one queue name');
      return qs;
    })
    .option('--drain', 'exit 0 once no job is available, scheduled within a second, or running')
    .option('--processes <n>', 'run N worker processes (1 to 256) under a supervisor that restarts them (docs/self-healing.md)', parseIntOption('--processes', PROCESSES_RANGE))
    .option('--liveness-timeout <ms>', 'with --processes: kill a process silent this long (default 10000)', parseIntOption('--liveness-timeout'))
    .option('--restart-delay <ms>', 'with --processes: first restart delay, doubling per crash (default 500)', parseIntOption('--restart-delay'))
    .option('--timeout-grace <ms>', 'with --processes: recycle a process whose handler ignores its abort this long past timeoutMs (default 5000)', parseIntOption('--timeout-grace'))
    .option('--no-coordinator', 'do not take part in leader election (schedules, pruning; see docs/coordination.md)')
    .option('--audit-retention <duration>', 'as leader, prune the audit trail older than this (90d; default: keep it forever)', parseDuration)
    .option('--stats-retention <duration>', 'as leader, delete per-minute stats older than this (default 31d)', parseDuration)
    .option('--leader-lease-ms <ms>', `leader lease length, from 300 to ${MAX_DEFAULT_LEASE_MS} (default 15000)`, parseIntOption('--leader-lease-ms', { min: 300, max: MAX_DEFAULT_LEASE_MS }))
    .action(async (o: Options, cmd: Command) => {
      exitWhenDone();
      if (!o.jobs) throw new UsageError('worker: --jobs FILE is required (a module that default-exports your job definitions)');
      if (o.processes !== undefined) return superviseFromCli({ ...o, jobs: o.jobs, processes: o.processes }, cmd);
      refuseSupervisorFlags(o);
      // Listen before the first await: a SIGTERM while the worker starts must drain it, not kill
      // the process with a job half done.
      let worker: Worker | undefined;
      let logger: Rebound['logger'] | undefined;
      let stopAsked = false;
      let hurried = false;
      onStopSignals({
        stop: (signal) => {
          // Said at once: the stop may take the whole grace, and a silent process invites a second Ctrl-C.
          if (worker) logger?.info({ worker: worker.id, signal, running: worker.activeJobs }, 'stopping: running jobs have the shutdown grace (10 s) to finish, the rest are released for other workers; a second signal releases them now');
          stopAsked = true;
          void worker?.stop();
        },
        hurry: (signal) => {
          logger?.warn({ signal, running: worker?.activeJobs ?? 0 }, 'second signal: the running jobs are aborted and released now; a third ends the process at once');
          hurried = true;
          void worker?.stop({ graceMs: 0 });
        },
      }, { repeatsAreOneStop: isSupervised() });
      const rebound = await openClient(cmd, { jobsFile: o.jobs });
      logger = rebound.logger;
      let supervised: ReturnType<typeof supervisedChild>;
      try {
        // The schedules and the coordinator's options are checked before the worker takes a job: a
        // mistake in them is a config error that ends the command, not a line logged by a worker that runs on.
        if (o.coordinator) {
          rebound.coordination.define(...(await loadSchedules(o.jobs)));
          rebound.coordination.coordinator(coordinatorOptions(o));
        }
        supervised = supervisedChild(rebound);
        worker = rebound.work({ concurrency: o.concurrency, queues: o.queues, drain: o.drain });
        if (stopAsked) void worker.stop(hurried ? { graceMs: 0 } : {});
        if (o.coordinator && !o.drain && !stopAsked) rebound.coordination.start(coordinatorOptions(o));
      } catch (err) {
        await worker?.stop();
        await rebound.close();
        throw inFlagTerms(err, FLAGS);
      }
      supervised?.attach(worker);
      rebound.logger.info({ worker: worker.id, types: [...rebound.definitions.keys()] }, 'worker started');
      await worker.done;
      await rebound.close();
      rebound.logger.info({ worker: worker.id }, 'worker stopped');
      supervised?.exit(0);
    });
}

/** The supervisor's flags without --processes would be ignored: the operator believes a protection is on that is not. */
function refuseSupervisorFlags(o: Options) {
  const given = (
    [
      ['--liveness-timeout', o.livenessTimeout],
      ['--restart-delay', o.restartDelay],
      ['--timeout-grace', o.timeoutGrace],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (given.length) throw new UsageError(`${given[0][0]} needs --processes N: only a supervisor of worker processes uses it`);
}
