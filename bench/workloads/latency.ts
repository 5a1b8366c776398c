// Workload 3: pickup latency. One idle worker process; the producer enqueues
// one job at a time and waits for it to start; enqueue call to handler start.
import type { Workload, Output, Section } from '../report.ts';
import { bestPeer, each, ratio } from '../report.ts';
import { pickupLatency, type LatencyResult } from '../harness.ts';
import { percentile } from '../lib.ts';

// Up to `max` samples or `budgetMs` of sampling, whichever ends first, but at
// least `min`: a system that picks up by polling (pg-boss, every 500 ms) takes
// 500 ms or more a sample.
const PLAN = {
  smoke: { max: 20, min: 4, budgetMs: 2_000 },
  default: { max: 1_000, min: 50, budgetMs: 15_000 },
  full: { max: 1_000, min: 200, budgetMs: 120_000 },
};

export const latency: Workload = {
  name: 'latency',
  description: 'enqueue-to-start latency with an idle worker',
  async run(ctx) {
    const out: Output = { sections: [], data: { results: [] as LatencyResult[] }, failures: [] };
    const systems = ctx.systems.filter((s) => s.role !== 'raw');
    const runs = await each(systems, out.failures, async (s) => {
      const ms = (await pickupLatency(ctx, s, PLAN[ctx.mode])).sort((a, b) => a - b);
      const r: LatencyResult = {
        system: s.name,
        store: s.store,
        samples: ms.length,
        p50: percentile(ms, 50),
        p95: percentile(ms, 95),
        p99: percentile(ms, 99),
        max: ms[ms.length - 1],
        mean: ms.reduce((a, b) => a + b, 0) / ms.length,
      };
      ctx.log(`${s.name}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`);
      return r;
    });
    out.data.results = runs.flatMap((r) => (r.result ? [r.result] : []));
    const best = bestPeer(runs.map((r) => ({ system: r.system, value: r.result?.p50 })), false);
    const section: Section = {
      title: 'Pickup latency (ms, enqueue call to handler start, idle worker)',
      headers: ['system', 'store', 'samples', 'p50', 'p95', 'p99', 'max', 'p50 x best peer'],
      rows: [
        ...runs.map(({ system, result: r, error }) =>
          r ? [system.name, system.store, r.samples, r.p50, r.p95, r.p99, r.max, ratio(r.p50, best, false)] : [system.name, system.store, `FAILED: ${error}`],
        ),
        ...ctx.pending.filter((p) => p.system.role !== 'raw').map((p) => [p.system.name, p.system.store, p.reason]),
      ],
      notes: [
        `Each sample: the producer (this process) enqueues one job and waits until the worker process has started it; ${Math.min(20, PLAN[ctx.mode].min)} warm-up samples first. ` +
          `Up to ${PLAN[ctx.mode].max} samples or ${PLAN[ctx.mode].budgetMs / 1000} s of sampling, whichever ends first, but at least ${PLAN[ctx.mode].min}. ` +
          'The raw-SQL loops have no wake-up path and are not measured here.',
      ],
    };
    out.sections.push(section);
    return out;
  },
};
