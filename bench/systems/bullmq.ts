// BullMQ 6 on Redis through ioredis: one Worker with `concurrency` N (BullMQ's
// documented way to scale a worker process), removeOnComplete as its
// production guide recommends, everything else at defaults.
import type { System, Client } from './types.ts';
import { REDIS_URL, REDIS_PREFIX } from '../lib.ts';

const QUEUE = 'noop';

async function redis() {
  const { Redis } = await import('ioredis');
  // BullMQ requires maxRetriesPerRequest: null on connections it blocks on.
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

export const bullmq: System = {
  name: 'bullmq',
  store: 'redis',
  role: 'peer',
  config: `Redis; Worker concurrency N, removeOnComplete {count: 0}, key prefix "${REDIS_PREFIX}"; blocking BZPOPMIN pickup`,
  fillChunk: 1000,
  async unavailable() {
    try {
      await import('bullmq');
      const r = await redis();
      await r.ping();
      r.disconnect();
    } catch (e) {
      return `bullmq/Redis not available: ${(e as Error).message}`;
    }
  },
  async reset() {
    // Only our own keys: other users of this Redis keep theirs.
    const r = await redis();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${REDIS_PREFIX}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await r.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      r.disconnect();
    }
  },
  async connect(): Promise<Client> {
    const { Queue, Worker } = await import('bullmq');
    const connection = await redis();
    const queue = new Queue(QUEUE, { connection, prefix: REDIS_PREFIX });
    const workers: { close(): Promise<void> }[] = [];
    return {
      async enqueue(payload) {
        await queue.add('noop', payload);
      },
      async enqueueMany(list) {
        await queue.addBulk(list.map((data) => ({ name: 'noop', data })));
      },
      async work({ concurrency, handler }) {
        const worker = new Worker(QUEUE, async (job) => handler(job.data), {
          connection: await redis(),
          prefix: REDIS_PREFIX,
          concurrency,
          removeOnComplete: { count: 0 },
        });
        worker.on('error', (e) => console.error('[bullmq]', e.message));
        workers.push(worker);
        return { stop: () => worker.close() };
      },
      async outstanding() {
        return queue.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      },
      async close() {
        await queue.close();
        connection.disconnect();
      },
    };
  },
};
