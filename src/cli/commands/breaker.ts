import type { Command } from 'commander';
import { globals, LIMIT_RANGE, parseIntOption, withClient } from '../context.ts';
import { printJson, printTable, time } from '../output.ts';
import type { BreakerView } from '../../runtime/breakers.ts';

const row = (b: BreakerView) => ({
  name: b.name,
  state: b.state,
  forced: b.forced,
  blocking: b.blocking,
  open_until: time(b.openUntil),
  trips: b.trips,
  failures: `${b.window.failures}/${b.window.calls}`,
  last_error: b.lastError,
});

export function register(program: Command) {
  const breaker = program.command('breaker').description('circuit breakers shared by every worker: list, open, close, reset, events');

  breaker
    .command('list')
    .description('every breaker with its state')
    .action(async (_o: unknown, cmd: Command) => {
      const list = await withClient(cmd, (r) => r.breakers.list(), { readOnly: true });
      if (globals(cmd).json) printJson(list);
      else printTable(list.map(row));
    });

  for (const [verb, to, help] of [
    ['open', 'open', 'force a breaker open: its jobs wait until it is closed or reset'],
    ['close', 'closed', 'force a breaker closed: its jobs run whatever fails, until reset'],
    ['reset', 'reset', 'back to automatic: closed, with its counters cleared'],
  ] as const) {
    breaker
      .command(`${verb} <name>`)
      .description(help)
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const view = await withClient(cmd, (r) => r.breakers.force(name, to, { actor: 'cli' }));
        if (globals(cmd).json) printJson(view);
        else {
          process.stdout.write(`breaker ${view.name}: ${view.state}${view.forced ? ` (forced ${view.forced})` : ''}\n`);
          // The CLI holds no job definitions: a worker running the breaker's job types redrives the outage's dead jobs.
          if (view.redrivePending) process.stdout.write(`the dead jobs of its outage will be redriven by a worker running its job types\n`);
        }
      });
  }

  breaker
    .command('events [name]')
    .description('state changes, newest first')
    .option('--limit <n>', 'at most this many', parseIntOption('--limit', LIMIT_RANGE), 50)
    .action(async (name: string | undefined, o: { limit: number }, cmd: Command) => {
      const events = await withClient(cmd, (r) => r.breakers.events({ name, limit: o.limit }), { readOnly: true });
      if (globals(cmd).json) return printJson(events);
      printTable(events.map((e) => ({ at: time(e.at), name: e.name, from: e.from, to: e.to, actor: e.actor, reason: e.reason })));
    });
}
