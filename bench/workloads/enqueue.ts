// Workload 2: enqueue rates from one producer process: sequential awaited
// single enqueues, 100 single enqueues in flight at once, and bulk batches.
import type { Workload, Output } from '../report.ts';
import { bestPeer, ratio } from '../report.ts';
import { enqueueEach, type EnqueueResult } from '../harness.ts';

const COUNTS = {
  smoke: { sequential: 50, concurrent: 200, inFlight: 100, bulk: 400, bulkBatch: 100 },
  default: { sequential: 2_000, concurrent: 10_000, inFlight: 100, bulk: 50_000, bulkBatch: 1_000 },
  full: { sequential: 10_000, concurrent: 50_000, inFlight: 100, bulk: 200_000, bulkBatch: 1_000 },
};

export const enqueue: Workload = {
  name: 'enqueue',
  description: 'sequential, 100-concurrent and bulk enqueue rates',
  async run(ctx) {
    const counts = COUNTS[ctx.mode];
    const out: Output = { sections: [], data: { counts, results: [] as EnqueueResult[] }, failures: [] };
    const runs = await enqueueEach(ctx, ctx.systems, counts, out.failures);
    out.data.results = runs.flatMap((r) => (r.result ? [r.result] : []));
    const metric = (k: 'sequentialPerSec' | 'concurrentPerSec' | 'bulkPerSec') => {
      const best = bestPeer(runs.map((r) => ({ system: r.system, value: r.result?.[k] })));
      return (r?: EnqueueResult) => (r ? [r[k], ratio(r[k], best)] : []);
    };
    const [seq, conc, bulk] = [metric('sequentialPerSec'), metric('concurrentPerSec'), metric('bulkPerSec')];
    out.sections.push({
      title: `Enqueue: ${counts.sequential.toLocaleString('en-US')} sequential, ${counts.concurrent.toLocaleString('en-US')} with ${counts.inFlight} in flight, ${counts.bulk.toLocaleString('en-US')} in batches of ${counts.bulkBatch.toLocaleString('en-US')}`,
      headers: ['system', 'store', 'sequential jobs/s', 'x best peer', `${counts.inFlight} in flight jobs/s`, 'x best peer', 'bulk jobs/s', 'x best peer'],
      rows: [
        ...runs.map(({ system, result: r, error }) =>
          r ? [system.name, system.store, ...seq(r), ...conc(r), ...bulk(r)] : [system.name, system.store, `FAILED: ${error}`],
        ),
        ...ctx.pending.map((p) => [p.system.name, p.system.store, p.reason]),
      ],
      notes: [
        'Single enqueue: Rebound enqueue(), graphile-worker addJob(), pg-boss send(), BullMQ Queue.add(), raw INSERT. ' +
          'Bulk: Rebound enqueueMany(), graphile-worker addJobs() (its add_jobs SQL function), pg-boss insert(), BullMQ addBulk(), raw INSERT ... unnest / one SQLite transaction.',
        'Connection pools are each library\'s default.',
        `Each rate is the median of ${ctx.repeats} repetitions, interleaved across the systems, each in a producer process of its own.`,
      ],
    });
    return out;
  },
};
