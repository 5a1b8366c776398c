import { InvalidArgumentError, type Command } from 'commander';
import { isJobId } from '../../engine/job-query.ts';
import type { Selection } from '../../store/store.ts';
import { globals, namingFlags, parseIntOption, UsageError, withClient } from '../context.ts';
import { FILTER_FLAGS } from './jobs.ts';
import { printJson, printTable, time } from '../output.ts';

interface SelectionOptions {
  id?: string[];
  type?: string;
  fingerprint?: string;
  all?: boolean;
  yes?: boolean;
}

function selection(o: SelectionOptions, verb: string): Selection {
  const given = [o.id?.length, o.type, o.fingerprint, o.all].filter(Boolean).length;
  if (given !== 1) throw new UsageError(`dlq ${verb}: give exactly one of --id ID..., --type T, --fingerprint F or --all`);
  if (verb === 'purge' && o.all && !o.yes) throw new UsageError('dlq purge --all deletes every dead job and its history: add --yes to confirm');
  return { ids: o.id, type: o.type, fingerprint: o.fingerprint, all: o.all };
}

const ids = (v: string, prev: string[] = []) => {
  if (!isJobId(v)) throw new InvalidArgumentError(`--id must be a job id (1 to 15 digits), got "${v}"`);
  return [...prev, v];
};

function withSelection(cmd: Command) {
  return cmd
    .option('--id <id...>', 'job ids', ids)
    .option('--type <type>', 'every dead job of this type')
    .option('--fingerprint <fp>', 'every dead job with this error fingerprint')
    .option('--all', 'every dead job');
}

/** The selection given to `dlq redrive|purge`: a `--type` before the verb (`dlq --type T purge`) counts as given. */
function selectionOptions(o: SelectionOptions, cmd: Command): SelectionOptions {
  const parentType = (cmd.parent!.opts() as { type?: string }).type;
  if (parentType !== undefined && o.type !== undefined) throw new UsageError(`dlq ${cmd.name()}: give --type once`);
  return { ...o, type: o.type ?? parentType };
}

export function register(program: Command) {
  const dlq = program
    .command('dlq')
    .description('the dead letter queue: list, redrive, purge')
    // Options after `redrive` or `purge` are theirs: without this the list's own --type took `dlq purge --type T`'s.
    .enablePositionalOptions()
    .option('--type <type>', 'only this job type')
    .option('--limit <n>', 'at most this many', parseIntOption('--limit'), 50)
    .action(async (o: { type?: string; limit: number }, cmd: Command) => {
      const dead = await withClient(cmd, (r) => namingFlags(FILTER_FLAGS, () => r.listDead({ type: o.type, limit: o.limit })), { readOnly: true });
      if (globals(cmd).json) return printJson(dead);
      printTable(
        dead.map((j) => ({
          id: j.id,
          type: j.type,
          reason: j.deadReason,
          fingerprint: j.lastError?.fingerprint,
          attempt: j.attempt,
          died_at: time(j.finishedAt),
          error: j.lastError ? `${j.lastError.name}: ${j.lastError.message}` : null,
        })),
      );
    });

  withSelection(dlq.command('redrive').description('send dead jobs back to the queue with a fresh attempt budget')).action(
    async (o: SelectionOptions, cmd: Command) => {
      const sel = selection(selectionOptions(o, cmd), 'redrive');
      const redriven = await withClient(cmd, (r) => r.redrive(sel, { actor: 'cli' }));
      if (globals(cmd).json) printJson({ redriven: redriven.length, ids: redriven });
      else process.stdout.write(`redriven: ${redriven.length}\n`);
    },
  );

  withSelection(dlq.command('purge').description('delete dead jobs and their history'))
    .option('--yes', 'confirm --all')
    .action(async (o: SelectionOptions, cmd: Command) => {
      const sel = selection(selectionOptions(o, cmd), 'purge');
      const purged = await withClient(cmd, (r) => r.purge(sel, { actor: 'cli' }));
      if (globals(cmd).json) printJson({ purged });
      else process.stdout.write(`purged: ${purged}\n`);
    });
}
