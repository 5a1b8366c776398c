// pg-boss 10 (the newest major that runs on Node 20; 11+ needs Node 22).
//
// pg-boss's own work() loop fetches `batchSize` jobs and then waits out the
// rest of its polling interval (500 ms at the least) even when more jobs are
// waiting, which caps one loop at batchSize per 0.5 s. For throughput its docs
// point to batching, so this adapter drives pg-boss's public batch API in a
// loop: fetch({ batchSize: 500 }) -> run the batch N at a time -> complete(ids)
// without waiting for it (as pg-boss's worker does) -> fetch again at once.
// An empty fetch waits 500 ms, pg-boss's shortest polling interval. That is
// much faster than work() and uses the same batch size as graphile-worker's
// local queue.
import type { System, Client, Payload } from './types.ts';
import { PG_URL, mapLimited, pgExec, sleep } from '../lib.ts';

const SCHEMA = 'pgboss_bench';
const QUEUE = 'noop';
const POLL_MS = 500;
const BATCH = 500;

export const pgboss: System = {
  name: 'pg-boss',
  store: 'postgres',
  pgSchema: SCHEMA,
  role: 'peer',
  config: `schema ${SCHEMA}; loop of fetch({batchSize: ${BATCH}}) -> run N at a time -> complete(ids), refetching at once while busy, ${POLL_MS} ms polling when idle (pg-boss minimum); pool max 10 (default)`,
  fillChunk: 5000,
  async unavailable() {
    try {
      await import('pg-boss');
    } catch (e) {
      return `pg-boss not installed: ${(e as Error).message}`;
    }
  },
  async reset() {
    await pgExec(`drop schema if exists ${SCHEMA} cascade`);
  },
  async connect(role): Promise<Client> {
    const { default: PgBoss } = await import('pg-boss');
    const boss = new PgBoss({
      connectionString: PG_URL,
      schema: SCHEMA,
      // Maintenance and cron belong to the worker side; a producer needs neither.
      supervise: role === 'worker',
      schedule: false,
    });
    boss.on('error', (e) => console.error('[pg-boss]', e.message));
    await boss.start();
    if (!(await boss.getQueue(QUEUE))) await boss.createQueue(QUEUE);
    return {
      async enqueue(payload) {
        await boss.send(QUEUE, payload);
      },
      async enqueueMany(list) {
        await boss.insert(list.map((data) => ({ name: QUEUE, data })));
      },
      async work({ concurrency, handler }) {
        let stopping = false;
        const completing = new Set<Promise<unknown>>();
        const loop = (async () => {
          while (!stopping) {
            const jobs = await boss.fetch<Payload>(QUEUE, { batchSize: BATCH });
            if (!jobs.length) {
              await sleep(POLL_MS);
              continue;
            }
            await mapLimited(jobs, concurrency, (j) => handler(j.data));
            // Like pg-boss's own worker, do not wait for the completion before fetching again.
            const p = boss.complete(QUEUE, jobs.map((j) => j.id)).finally(() => completing.delete(p));
            completing.add(p);
          }
        })();
        return {
          async stop() {
            stopping = true;
            await loop;
            await Promise.all(completing);
          },
        };
      },
      async outstanding() {
        return boss.getQueueSize(QUEUE, { before: 'completed' });
      },
      close: () => boss.stop({ graceful: true, wait: true }),
    };
  },
};
