// Workload 7: the raw ceiling of each store. The same claim-run-complete
// drain done by batched raw SQL (node-postgres; plain better-sqlite3),
// next to Rebound on the same store (reuses workload 1's runs when present).
import type { Workload, Output } from '../report.ts';
import { drainEach } from '../harness.ts';
import { fmt } from '../lib.ts';
import { SIZES } from './throughput.ts';

const PAIRS = [
  { store: 'postgres', raw: 'raw-pg', rebound: 'rebound-pg' },
  { store: 'sqlite', raw: 'raw-sqlite', rebound: 'rebound-sqlite' },
];

export const raw: Workload = {
  name: 'raw',
  description: 'raw-SQL ceiling of each store vs Rebound on it',
  async run(ctx) {
    const out: Output = { sections: [], data: { results: [] }, failures: [] };
    const names = PAIRS.flatMap((p) => [p.raw, p.rebound]);
    const systems = ctx.systems.filter((s) => names.includes(s.name));
    for (const jobs of SIZES[ctx.mode]) {
      const runs = await drainEach(ctx, systems, jobs, out.failures);
      const rate = (name: string) => runs.find((r) => r.system.name === name)?.result?.jobsPerSec;
      const pendingReason = (name: string) => ctx.pending.find((p) => p.system.name === name)?.reason;
      const rows = PAIRS.map(({ store, raw, rebound }) => {
        const [c, r] = [rate(raw), rate(rebound)];
        out.data.results.push({ store, jobs, rawPerSec: c, reboundPerSec: r, fraction: c && r ? r / c : undefined });
        const missing = (name: string) => pendingReason(name) ?? (systems.some((s) => s.name === name) ? 'failed' : 'not selected');
        return [store, c ?? missing(raw), r ?? missing(rebound), c && r ? `${fmt((100 * r) / c)}%` : '', '>= 70%'];
      });
      out.sections.push({
        title: `Raw ceiling: ${jobs.toLocaleString('en-US')} jobs, 1 worker process, concurrency ${ctx.concurrency}`,
        headers: ['store', 'raw SQL jobs/s', 'Rebound jobs/s', 'Rebound / raw', 'target'],
        rows,
      });
    }
    return out;
  },
};
