import type { Command } from 'commander';
import { JOB_STATES, type JobState } from '../../job.ts';
import { InvalidArgumentError } from 'commander';
import { globals, namingFlags, parseIntOption, withClient } from '../context.ts';
import { jobRow, printJson, printTable, time } from '../output.ts';

/** The flags of `jobs` and `dlq` that set a listing's filter. */
export const FILTER_FLAGS = { 'filter.limit': '--limit', 'filter.type': '--type', 'filter.queue': '--queue', 'filter.state': '--state' };

function parseState(value: string): JobState {
  if (!(JOB_STATES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--state must be one of ${JOB_STATES.join(', ')}`);
  }
  return value as JobState;
}

export function register(program: Command) {
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('--state <state>', `one of ${JOB_STATES.join(', ')}`, parseState)
    .option('--type <type>', 'job type')
    .option('--queue <queue>', 'queue')
    .option('--limit <n>', 'at most this many', parseIntOption('--limit'), 50)
    .action(async (o: { state?: JobState; type?: string; queue?: string; limit: number }, cmd: Command) => {
      const jobs = await withClient(cmd, (r) => namingFlags(FILTER_FLAGS, () => r.listJobs({ state: o.state, type: o.type, queue: o.queue, limit: o.limit })), { readOnly: true });
      if (globals(cmd).json) printJson(jobs);
      else printTable(jobs.map(jobRow));
    });

  program
    .command('job')
    .description('show one job with its history and attempts')
    .argument('<id>', 'job id')
    .option('--jobs <file>', 'job definitions module: its `redact` paths mask sensitive payload fields')
    .action(async (id: string, o: { jobs?: string }, cmd: Command) => {
      const details = await withClient(cmd, (r) => r.inspect(id), { jobsFile: o.jobs, readOnly: true });
      if (globals(cmd).json) return printJson(details);
      const { job, history, attempts } = details;
      printTable([jobRow(job)]);
      process.stdout.write(`\npayload: ${JSON.stringify(job.payload)}\nresult:  ${JSON.stringify(job.result)}\n`);
      if (job.deadReason) process.stdout.write(`dead:    ${job.deadReason} (fingerprint ${job.lastError?.fingerprint})\n`);
      const wf = details.workflow;
      if (wf) process.stdout.write(`workflow: v${wf.version} ${wf.status}, state ${wf.state ?? '-'}, waiting ${wf.waiting ?? '-'} (rebound workflow ${job.id})\n`);
      process.stdout.write('\nhistory\n');
      printTable(history.map((h) => ({ seq: h.seq, at: time(h.at), event: h.kind, attempt: h.attempt, worker: h.worker ?? null })));
      process.stdout.write('\nattempts\n');
      printTable(
        attempts.map((a) => ({
          attempt: a.attempt,
          outcome: a.outcome,
          worker: a.worker,
          duration_ms: a.endedAt == null ? null : a.endedAt - a.startedAt,
          error: a.error ? `${a.error.name}: ${a.error.message}` : null,
        })),
      );
    });

  program
    .command('cancel')
    .description('cancel a job that has not finished')
    .argument('<id>', 'job id')
    .action(async (id: string, _o, cmd: Command) => {
      const job = await withClient(cmd, (r) => r.cancel(id, { actor: 'cli' }));
      if (globals(cmd).json) printJson({ id: job.id, state: job.state });
      else process.stdout.write(`job ${job.id} cancelled\n`);
    });
}
