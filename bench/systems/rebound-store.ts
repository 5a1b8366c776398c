// A diagnostic, not in the default run: Rebound's PostgreSQL store (its schema, its claim and completion
// statements, its row parsing) driven by the raw loop's minimal worker (lib.ts runLocalQueue) instead of
// Rebound's Worker. Set against raw-pg and rebound-pg, it tells the store's cost from the worker engine's:
//
//   npm run bench -- throughput --systems rebound-store-pg,raw-pg,rebound-pg --no-save
//   node --import tsx bench/probes/timeline.ts rebound-store-pg
import type { System, Client } from './types.ts';
import { PG_URL, runLocalQueue, withSearchParam } from '../lib.ts';
import { reboundPg } from './rebound.ts';

const BATCH = 500;
const IN_FLIGHT = 2;

export const reboundStorePg: System = {
  ...reboundPg,
  name: 'rebound-store-pg',
  role: 'raw',
  config: `Rebound's store on schema ${reboundPg.pgSchema}, driven like raw-pg: claims of ${BATCH} into a local queue, N running at once, completions batched; <= ${IN_FLIGHT} claims and ${IN_FLIGHT} completions in flight; no Worker (no events, leases renewed, plugins, stats)`,
  async connect(role): Promise<Client> {
    const rebound = await reboundPg.connect(role); // creates the schema; enqueue and counts go through Rebound itself
    const { openStore } = await import('../../src/index.ts');
    const store = await openStore(withSearchParam(PG_URL, 'schema', reboundPg.pgSchema!));
    return {
      ...rebound,
      async work({ concurrency, handler }) {
        return runLocalQueue<{ id: string; token: number }>(
          {
            claim: async (n) =>
              (await store.claimJobs({ workerId: 'store-loop', queues: ['default'], types: ['noop'], limit: n, leaseMs: 60_000, now: Date.now() })).map((j) => ({
                id: { id: j.id, token: j.leaseToken },
                payload: j.payload as Record<string, unknown>,
              })),
            complete: async (refs) => void (await store.completeJobs(refs.map((r) => ({ ...r, result: null })), Date.now())),
          },
          { concurrency, batch: BATCH, inFlight: IN_FLIGHT, idleMs: 10, handler },
        );
      },
      async close() {
        await store.close();
        await rebound.close();
      },
    };
  },
};
