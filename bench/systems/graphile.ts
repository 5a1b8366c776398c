// graphile-worker 0.17, configured like its own perfTest/graphile.config.js:
// a local queue that locks jobs in batches, batched completion with
// completeJobBatchDelay 0, and a pool of concurrency + 1 connections.
import type { System, Client, Payload } from './types.ts';
import { PG_URL, pgExec } from '../lib.ts';

const SCHEMA = 'graphile_bench';
const LOCAL_QUEUE_SIZE = 500;

export const graphile: System = {
  name: 'graphile-worker',
  store: 'postgres',
  pgSchema: SCHEMA,
  role: 'peer',
  config: `schema ${SCHEMA}; concurrentJobs=N, maxPoolSize=N+1, localQueue {size: ${LOCAL_QUEUE_SIZE}, refetchDelay 10 ms}, completeJobBatchDelay 0, failJobBatchDelay 0 (perfTest settings); LISTEN/NOTIFY pickup`,
  fillChunk: 5000,
  async unavailable() {
    try {
      await import('graphile-worker');
    } catch (e) {
      return `graphile-worker not installed: ${(e as Error).message}`;
    }
  },
  async reset() {
    await pgExec(`drop schema if exists ${SCHEMA} cascade`);
  },
  async connect(): Promise<Client> {
    const gw = await import('graphile-worker');
    const utils = await gw.makeWorkerUtils({ connectionString: PG_URL, schema: SCHEMA });
    await utils.migrate();
    const spec = (payload: Payload) => ({ identifier: 'noop', payload });
    return {
      async enqueue(payload) {
        await utils.addJob('noop', payload);
      },
      async enqueueMany(list) {
        await utils.addJobs(list.map(spec));
      },
      async work({ concurrency, handler }) {
        const runner = await gw.run({
          noHandleSignals: true,
          taskList: { noop: async (payload) => handler(payload as Payload) },
          logger: new gw.Logger(() => () => {}),
          preset: {
            worker: {
              connectionString: PG_URL,
              schema: SCHEMA,
              concurrentJobs: concurrency,
              maxPoolSize: concurrency + 1,
              pollInterval: 2000,
              gracefulShutdownAbortTimeout: 2500,
              localQueue: { size: LOCAL_QUEUE_SIZE, refetchDelay: { durationMs: 10 } },
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
            },
          },
        });
        return { stop: () => runner.stop() };
      },
      async outstanding() {
        // Completed jobs are deleted by graphile-worker, so what is left is outstanding.
        const { rows } = await utils.withPgClient((c) =>
          c.query(`select count(*)::int as n from ${SCHEMA}._private_jobs`),
        );
        return rows[0].n;
      },
      async close() {
        await utils.release();
      },
    };
  },
};
