// Workload 4: backlog scaling. Claim rate of one worker process over its
// first few thousand jobs with a small vs a large backlog waiting.
import type { Workload, Output } from '../report.ts';
import { each } from '../report.ts';
import { claimRate, type ClaimRateResult } from '../harness.ts';
import { fmt } from '../lib.ts';

const PLAN = {
  smoke: { sizes: [300, 1_000], warm: 50, claims: 200 },
  default: { sizes: [10_000, 100_000], warm: 1_000, claims: 8_000 },
  full: { sizes: [10_000, 1_000_000], warm: 1_000, claims: 8_000 },
};

export const backlog: Workload = {
  name: 'backlog',
  description: 'claim rate with a small vs a large backlog waiting',
  async run(ctx) {
    const { sizes, warm, claims } = PLAN[ctx.mode];
    const out: Output = { sections: [], data: { sizes, warm, claims, results: [] as ClaimRateResult[] }, failures: [] };
    const runs = await each(ctx.systems, out.failures, async (s) => {
      const res: ClaimRateResult[] = [];
      for (const waiting of sizes) res.push(await claimRate(ctx, s, waiting, warm, claims));
      return res;
    });
    out.data.results = runs.flatMap((r) => r.result ?? []);
    const [small, big] = [sizes[0], sizes[sizes.length - 1]];
    out.sections.push({
      title: `Backlog scaling: claims/s from job ${warm.toLocaleString('en-US')} to job ${(warm + claims).toLocaleString('en-US')}, 1 worker, concurrency ${ctx.concurrency}`,
      headers: ['system', 'store', `${fmt(small)} waiting`, `${fmt(big)} waiting`, 'large / small', `fill s (${fmt(big)})`],
      rows: [
        ...runs.map(({ system, result, error }) => {
          if (!result) return [system.name, system.store, `FAILED: ${error}`];
          const [a, b] = [result[0], result[result.length - 1]];
          return [system.name, system.store, a.claimsPerSec, b.claimsPerSec, `${Math.round((100 * b.claimsPerSec) / a.claimsPerSec)}%`, b.fillSeconds];
        }),
        ...ctx.pending.map((p) => [p.system.name, p.system.store, p.reason]),
      ],
      notes: [
        `Claim rate = handler starts per second between the ${warm.toLocaleString('en-US')}th and the ${(warm + claims).toLocaleString('en-US')}th job a fresh worker process starts (median of ${ctx.repeats}). ` +
          'Backlogs are filled with each system\'s bulk enqueue; on PostgreSQL the system\'s tables are then vacuumed, analyzed and checkpointed. Repetitions reuse the large backlog and refill the small one.',
      ],
    });
    return out;
  },
};
