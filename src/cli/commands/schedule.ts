import { InvalidArgumentError, type Command } from 'commander';
import type { MisfirePolicy } from '../../coordination/schedules.ts';
import type { ScheduleRecord } from '../../store/coordination.ts';
import { ValidationError } from '../../errors.ts';
import { globals, inFlagTerms, withClient } from '../context.ts';
import { printJson, printTable, time } from '../output.ts';

function parseMisfire(v: string): MisfirePolicy {
  if (v === 'skip' || v === 'once') return v;
  const m = /^all(?::(\d+))?$/.exec(v);
  if (m) return { all: Number(m[1] ?? 100) };
  throw new InvalidArgumentError('--misfire must be skip, once, or all:N (catch up at most N missed fire times)');
}

function parseJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`--payload must be JSON, got ${v}`);
  }
}

function parseJitter(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`--jitter-ms must be a non-negative integer, got "${v}"`);
  return Number(v);
}

/** A time as the wall clock of the schedule's zone shows it, e.g. 2026-03-08 03:00:00. */
const localTime = (ms: number, tz: string) => new Intl.DateTimeFormat('sv-SE', { timeZone: tz, dateStyle: 'short', timeStyle: 'medium' }).format(ms);

/** The library names a schedule's fields as code writes them (`defineSchedule("n").cron`); the CLI names its flags. */
function inScheduleFlags(name: string, err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  const field = err.field.replace(`defineSchedule("${name}").`, '');
  const plain = new ValidationError(field, err.message.slice(err.field.length + 2));
  return inFlagTerms(plain, { cron: '--cron', type: '--type', tz: '--tz', misfire: '--misfire', jitterMs: '--jitter-ms', name: '<name>' });
}

const misfireText = (m: MisfirePolicy) => (typeof m === 'string' ? m : `all:${m.all}`);

function row(s: ScheduleRecord) {
  return {
    name: s.name,
    cron: s.cron,
    tz: s.tz,
    type: s.type,
    state: s.paused ? 'paused' : 'active',
    next_fire: s.paused ? null : time(s.nextFireAt),
    next_fire_local: s.paused || s.nextFireAt == null ? null : localTime(s.nextFireAt, s.tz),
    last_fire: time(s.lastFireAt),
    misfire: misfireText(s.misfire),
    source: s.source,
  };
}

function print(cmd: Command, s: ScheduleRecord, verb: string) {
  if (globals(cmd).json) printJson(s);
  else process.stdout.write(`${verb} ${s.name}${s.paused ? '' : `; next fire ${time(s.nextFireAt) ?? 'never'}`}\n`);
}

export function register(program: Command) {
  const schedule = program.command('schedule').description('cron schedules stored in the store: add, list, remove, pause, resume');

  schedule
    .command('add')
    .description('add (or redefine) a schedule that enqueues a job at every fire time')
    .argument('<name>', 'schedule name')
    .requiredOption('--cron <pattern>', 'five fields (minute hour day month weekday), or six with seconds first')
    .requiredOption('--type <type>', 'job type to enqueue')
    .option('--tz <zone>', 'IANA time zone the pattern is read in', 'UTC')
    .option('--payload <json>', 'job payload (JSON)', parseJson)
    .option('--misfire <policy>', 'after downtime: skip, once, or all:N (default once)', parseMisfire)
    .option('--jitter-ms <ms>', 'spread each job by up to this delay', parseJitter)
    .action(async (name: string, o: { cron: string; type: string; tz: string; payload?: unknown; misfire?: MisfirePolicy; jitterMs?: number }, cmd: Command) => {
      const s = await withClient(cmd, (r) =>
        r.coordination.addSchedule(name, { cron: o.cron, tz: o.tz, type: o.type, payload: o.payload, misfire: o.misfire, jitterMs: o.jitterMs }, { actor: 'cli' }),
      ).catch((err: unknown) => {
        throw inScheduleFlags(name, err);
      });
      print(cmd, s, 'scheduled');
    });

  schedule
    .command('list')
    .description('every schedule with its next fire time')
    .action(async (_o, cmd: Command) => {
      const list = await withClient(cmd, (r) => r.coordination.listSchedules(), { readOnly: true });
      if (globals(cmd).json) printJson(list);
      else printTable(list.map(row), ['name', 'cron', 'tz', 'type', 'state', 'next_fire', 'next_fire_local', 'last_fire', 'misfire', 'source']);
    });

  schedule
    .command('remove')
    .description('delete a schedule (jobs it already enqueued stay)')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _o, cmd: Command) => {
      await withClient(cmd, (r) => r.coordination.removeSchedule(name, { actor: 'cli' }));
      if (globals(cmd).json) printJson({ removed: name });
      else process.stdout.write(`removed ${name}\n`);
    });

  schedule
    .command('pause')
    .description('stop a schedule from firing until it is resumed')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _o, cmd: Command) => {
      print(cmd, await withClient(cmd, (r) => r.coordination.pauseSchedule(name, { actor: 'cli' })), 'paused');
    });

  schedule
    .command('resume')
    .description("fire again; fire times passed while paused follow the schedule's misfire policy (the default 'once' catches up one run)")
    .argument('<name>', 'schedule name')
    .action(async (name: string, _o, cmd: Command) => {
      print(cmd, await withClient(cmd, (r) => r.coordination.resumeSchedule(name, { actor: 'cli' })), 'resumed');
    });
}
