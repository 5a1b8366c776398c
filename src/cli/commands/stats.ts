import type { Command } from 'commander';
import { globals, withClient } from '../context.ts';
import { printJson, printTable } from '../output.ts';
import type { Percentiles } from '../../observability/stats.ts';

const ms = (p: Percentiles) => (p.count ? `${p.p50} / ${p.p95} / ${p.p99}` : '-');
const pct = (r: number | null) => (r == null ? '-' : `${(r * 100).toFixed(1)}%`);

export function register(program: Command) {
  program
    .command('stats')
    .description('throughput, success rate, latency percentiles and errors over a window, from rollups')
    .option('--window <window>', '5m, 1h, 24h (any Nm, Nh or Nd up to 31d)', '1h')
    .option('--type <type>', 'only this job type')
    .action(async (o: { window: string; type?: string }, cmd: Command) => {
      const stats = await withClient(cmd, (r) => r.stats({ window: o.window, type: o.type }), { readOnly: true });
      if (globals(cmd).json) return printJson(stats);
      const t = stats.totals;
      process.stdout.write(
        `window ${stats.window} (${stats.from} → ${stats.to})\n` +
          `completed ${t.completed}, retried ${t.retried}, dead ${t.dead}, success rate ${pct(t.success_rate)}\n` +
          `run ms p50/p95/p99: ${ms(t.run_ms)}    pickup ms p50/p95/p99: ${ms(t.pickup_ms)}\n\n`,
      );
      printTable(
        stats.by_type.map((s) => ({
          type: s.type,
          enqueued: s.enqueued,
          completed: s.completed,
          retried: s.retried,
          dead: s.dead,
          success: pct(s.success_rate),
          'run p50/p95/p99': ms(s.run_ms),
          'pickup p50/p95/p99': ms(s.pickup_ms),
        })),
      );
      process.stdout.write('\nthroughput (completed per step)\n');
      printTable(stats.throughput.filter((p) => p.completed || p.retried || p.dead));
      process.stdout.write('\nerrors\n');
      printTable(stats.errors.map((e) => ({ type: e.type, fingerprint: e.fingerprint, kind: e.kind, count: e.count, error: `${e.name}: ${e.message}` })));
    });
}
