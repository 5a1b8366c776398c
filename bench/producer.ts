// A producer child process for the enqueue workload: one system's client and
// nothing else, so its enqueue rates are its own, not shaped by the peers the
// runner has loaded and driven before (the workers run apart for the same
// reason). Driven by harness.ts: options as argv JSON; child -> result | error.
import { enqueueRates, type Context, type EnqueueResult, type Mode } from './harness.ts';
import { system } from './systems/index.ts';

const opts: { system: string; mode: Mode; counts: EnqueueResult['counts'] } = JSON.parse(process.argv[2]);
const ctx: Context = { mode: opts.mode, concurrency: 0, systems: [], repeats: 1, log: (msg) => console.error(`  ${msg}`), drains: new Map() };
try {
  process.send!({ type: 'result', result: await enqueueRates(ctx, system(opts.system), opts.counts) });
} catch (e) {
  process.send!({ type: 'error', message: (e as Error).message });
}
process.disconnect();
