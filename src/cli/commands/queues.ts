import type { Command } from 'commander';
import { globals, parseIntOption, withClient } from '../context.ts';
import { printJson, printTable } from '../output.ts';

/** Rates over more than a week would mostly read jobs that retention has removed by default. */
const WINDOW_RANGE = { min: 1000, max: 7 * 24 * 3600_000 };

const seconds = (ms: number | null) => (ms == null ? null : `${Math.round(ms / 100) / 10}s`);

export function register(program: Command) {
  program
    .command('queues')
    .description('depth and lag per queue: waiting, oldest wait, arrival and completion rates, projected drain time')
    .option('--window <ms>', 'rate window, from 1000 ms to 7 days', parseIntOption('--window', WINDOW_RANGE), 60_000)
    .action(async (o: { window: number }, cmd: Command) => {
      const stats = await withClient(cmd, (r) => r.queueStats({ windowMs: o.window }), { readOnly: true });
      if (globals(cmd).json) return printJson(stats);
      printTable(
        stats.map((s) => ({
          queue: s.queue,
          depth: s.depth,
          scheduled: s.scheduled,
          running: s.running,
          oldest_wait: seconds(s.oldestWaitingMs),
          in_per_s: s.arrivalsPerSec,
          out_per_s: s.completionsPerSec,
          drain: s.projectedDrainMs == null ? 'never' : seconds(s.projectedDrainMs),
          warning: s.warning,
        })),
      );
    });
}
