/** `rebound signal ID NAME 'JSON'` and `rebound workflow ID`: talk to a workflow run, look into it. */
import type { Command } from 'commander';
import { UsageError, globals, withClient } from '../context.ts';
import { printJson, printTable, time } from '../output.ts';

export function register(program: Command) {
  program
    .command('signal')
    .description('send a signal to a workflow; a workflow waiting for it (ctx.waitFor(name)) wakes at once')
    .argument('<id>', 'workflow job id')
    .argument('<name>', 'signal name')
    .argument('[payload]', 'JSON payload', 'null')
    .option('--jobs <file>', 'job definitions module: a job its definitions say is not a workflow is refused')
    .action(async (id: string, name: string, payloadText: string, o: { jobs?: string }, cmd: Command) => {
      let payload: unknown;
      try {
        payload = JSON.parse(payloadText);
      } catch (err) {
        throw new UsageError(`payload: not valid JSON (${(err as Error).message}); quote it, e.g. '{"approved":true}'`);
      }
      const result = await withClient(cmd, (r) => r.signal(id, name, payload, { actor: 'cli' }), { jobsFile: o.jobs });
      if (globals(cmd).json) printJson(result);
      else printTable([{ job: id, signal: name, signal_id: result.signalId, woke: result.woke }]);
    });

  program
    .command('workflow')
    .description('show a workflow run: version, status, named state, what it waits for, and its step history')
    .argument('<id>', 'workflow job id')
    .action(async (id: string, _o, cmd: Command) => {
      const wf = await withClient(cmd, (r) => r.workflow(id), { readOnly: true });
      if (globals(cmd).json) return printJson(wf);
      printTable([{ job: wf.jobId, type: wf.type, version: wf.version, status: wf.status, state: wf.state, waiting: wf.waiting }]);
      if (wf.error) process.stdout.write(`failed:  ${wf.error.message}\n`);
      process.stdout.write('\nsteps\n');
      printTable(
        wf.steps.map((s) => ({
          seq: s.seq,
          kind: s.kind,
          name: s.name,
          status: s.status,
          attempts: s.attempts,
          compensation: s.compensation === 'none' ? null : s.compensation,
          finished: time(s.finishedAt),
          error: s.error?.message ?? null,
        })),
      );
    });
}
