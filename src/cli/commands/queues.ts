import type { Command } from 'commander';
import { globals, parseIntOption, UsageError, withClient } from '../context.ts';
import { printJson, printTable } from '../output.ts';

const seconds = (ms: number | null) => (ms == null ? null : `${Math.round(ms / 100) / 10}s`);

export function register(program: Command) {
  program
    .command('queues')
    .description('depth and lag per queue: waiting, oldest wait, arrival and completion rates, projected drain time')
    .option('--window <ms>', 'rate window (default 60000)', parseIntOption('--window'), 60_000)
    .action(async (o: { window: number }, cmd: Command) => {
      if (o.window < 1000) throw new UsageError('--window must be at least 1000 ms');
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
