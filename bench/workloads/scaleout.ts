// Workload 5: scale-out on PostgreSQL. The same backlog drained by 1, 2 and
// 4 worker processes, each with the same concurrency.
import type { Workload, Output } from '../report.ts';
import { bestPeer, each, ratio } from '../report.ts';
import { drain, type DrainResult } from '../harness.ts';

const PLAN = {
  smoke: { jobs: 300, widths: [1, 2] },
  default: { jobs: 20_000, widths: [1, 2, 4] },
  full: { jobs: 200_000, widths: [1, 2, 4] },
};

export const scaleout: Workload = {
  name: 'scaleout',
  description: '1, 2 and 4 worker processes on PostgreSQL',
  async run(ctx) {
    const { jobs, widths } = PLAN[ctx.mode];
    const out: Output = { sections: [], data: { jobs, widths, results: [] as DrainResult[] }, failures: [] };
    const systems = ctx.systems.filter((s) => s.store === 'postgres');
    const runs = await each(systems, out.failures, async (s) => {
      const res: DrainResult[] = [];
      for (const w of widths) res.push(await drain(ctx, s, jobs, w));
      return res;
    });
    out.data.results = runs.flatMap((r) => r.result ?? []);
    const widest = widths.length - 1;
    const best = bestPeer(runs.map((r) => ({ system: r.system, value: r.result?.[widest].jobsPerSec })));
    out.sections.push({
      title: `Scale-out on PostgreSQL: ${jobs.toLocaleString('en-US')} jobs, concurrency ${ctx.concurrency} per process (jobs/s)`,
      headers: ['system', ...widths.map((w) => `${w} worker${w > 1 ? 's' : ''}`), `${widths[widest]} / 1`, `x best peer (${widths[widest]})`],
      rows: [
        ...runs.map(({ system, result, error }) =>
          result
            ? [system.name, ...result.map((r) => r.jobsPerSec), `${(result[widest].jobsPerSec / result[0].jobsPerSec).toFixed(2)}x`, ratio(result[widest].jobsPerSec, best)]
            : [system.name, `FAILED: ${error}`],
        ),
        ...ctx.pending.filter((p) => p.system.store === 'postgres').map((p) => [p.system.name, p.reason]),
      ],
      notes: ['The machine has 2 cores, shared by PostgreSQL and the workers: beyond 2 processes extra workers compete for CPU with the database.'],
    });
    return out;
  },
};
