// Workload 6: peak RSS (VmHWM from /proc/PID/status) of the worker process
// while it drains the largest throughput backlog (reuses workload 1's runs).
import type { Workload, Output } from '../report.ts';
import { bestPeer, ratio } from '../report.ts';
import { drainEach } from '../harness.ts';
import { SIZES } from './throughput.ts';

export const memory: Workload = {
  name: 'memory',
  description: 'peak RSS of the worker process in the throughput workload',
  async run(ctx) {
    const jobs = Math.max(...SIZES[ctx.mode]);
    const out: Output = { sections: [], data: { jobs, results: [] }, failures: [] };
    const runs = await drainEach(ctx, ctx.systems, jobs, out.failures);
    const best = bestPeer(runs.map((r) => ({ system: r.system, value: r.result?.peakRssMiB })), false);
    out.data.results = runs.flatMap((r) => (r.result ? [{ system: r.system.name, store: r.system.store, jobs, peakRssMiB: r.result.peakRssMiB }] : []));
    out.sections.push({
      title: `Memory: peak RSS of the worker process draining ${jobs.toLocaleString('en-US')} jobs`,
      headers: ['system', 'store', 'peak RSS MiB', 'x best peer (lower is better)'],
      rows: [
        ...runs.map(({ system, result: r, error }) =>
          r ? [system.name, system.store, r.peakRssMiB, ratio(r.peakRssMiB, best, false)] : [system.name, system.store, `FAILED: ${error}`],
        ),
        ...ctx.pending.map((p) => [p.system.name, p.system.store, p.reason]),
      ],
      notes: ['Every worker process is `node --import tsx bench/worker.ts` and loads only its own system, so the figures share the same Node + tsx baseline.'],
    });
    return out;
  },
};
