// Workload 1: N no-op jobs pre-enqueued, drained by ONE worker process;
// jobs/s from "go" to the last committed completion.
import type { Workload, Output } from '../report.ts';
import { bestPeer, ratio } from '../report.ts';
import { drainEach, type DrainResult } from '../harness.ts';
import { fmt } from '../lib.ts';

const spread = (v: number[]) => (v.length > 1 ? `${fmt(Math.min(...v))} - ${fmt(Math.max(...v))}` : '');

export const SIZES = { smoke: [300], default: [20_000], full: [20_000, 200_000] };

export const throughput: Workload = {
  name: 'throughput',
  description: 'pre-enqueued no-op jobs drained by one worker process',
  async run(ctx) {
    const out: Output = { sections: [], data: { results: [] as DrainResult[] }, failures: [] };
    for (const jobs of SIZES[ctx.mode]) {
      const runs = await drainEach(ctx, ctx.systems, jobs, out.failures);
      const best = bestPeer(runs.map((r) => ({ system: r.system, value: r.result?.jobsPerSec })));
      out.data.results.push(...runs.flatMap((r) => (r.result ? [r.result] : [])));
      out.sections.push({
        title: `Throughput: ${jobs.toLocaleString('en-US')} jobs, 1 worker process, concurrency ${ctx.concurrency}`,
        headers: ['system', 'store', 'seconds', 'jobs/s', 'x best peer', 'runs min-max jobs/s', 'peak RSS MiB'],
        rows: [
          ...runs.map(({ system, result: r, error }) =>
            r
              ? [system.name, system.store, r.seconds, r.jobsPerSec, ratio(r.jobsPerSec, best), spread(r.repetitions), r.peakRssMiB]
              : [system.name, system.store, `FAILED: ${error}`],
          ),
          ...ctx.pending.map((p) => [p.system.name, p.system.store, p.reason]),
        ],
        notes: [`Median of ${ctx.repeats} repetitions, interleaved across the systems (A B C, A B C, ...), so that the machine's drift weighs on each alike.`],
      });
    }
    return out;
  },
};
