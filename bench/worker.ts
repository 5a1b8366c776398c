// A worker child process: one system's worker, nothing else, so its RSS and
// CPU are its own. Driven over IPC by harness.ts:
//   child -> ready | working | progress {count} | pickup {i, ms} | mark {n, atMs} | stopped {count}
//   parent -> go | stop
import { system } from './systems/index.ts';
import type { Payload, RunningWorker } from './systems/types.ts';

interface Options {
  system: string;
  concurrency: number;
  /** Report the time when each of these numbers of jobs has been started. */
  marks?: number[];
}

const opts: Options = JSON.parse(process.argv[2]);
const send = (msg: object) => process.send!(msg);

const client = await system(opts.system).connect('worker');
let worker: RunningWorker | undefined;
let count = 0;
let reported = 0;
const marks = new Set(opts.marks ?? []);

function handler(payload: Payload) {
  count++;
  if (typeof payload.t === 'string') {
    // Pickup latency: payload.t is the producer's hrtime before it enqueued;
    // hrtime is CLOCK_MONOTONIC, shared by all processes on the machine.
    send({ type: 'pickup', i: payload.i, ms: Number(process.hrtime.bigint() - BigInt(payload.t)) / 1e6 });
  }
  if (marks.has(count)) send({ type: 'mark', n: count, atMs: performance.now() });
}

const progress = setInterval(() => {
  if (count !== reported) send({ type: 'progress', count: (reported = count) });
}, 10);

process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'go') {
    worker = await client.work({ concurrency: opts.concurrency, handler });
    send({ type: 'working' });
  } else if (msg.type === 'stop') {
    clearInterval(progress);
    await worker?.stop();
    await client.close();
    send({ type: 'stopped', count });
    process.disconnect();
  }
});
// If the parent dies, do not linger.
process.on('disconnect', () => setTimeout(() => process.exit(0), 5000).unref());

send({ type: 'ready' });
